//! The `teal` process pointed at moto (or through a proxy in front of it),
//! and reading what it printed.

use super::*;

/// `teal` as a child process against moto.
pub fn teal(m: &Moto, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_teal"));
    cmd.args(args)
        .envs(teal_env(m))
        .env_remove("CODEBUILD_RESOLVED_SOURCE_VERSION")
        .env_remove("TEAL_CONFIG");
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// The instance-refresh stand-in in front of moto, moving refreshes on as
/// they are read (held at InProgress if `hold`): its state, and its address
/// for `AWS_ENDPOINT_URL_AUTO_SCALING`.
pub async fn refresh_stand_in(
    m: &Moto,
    hold: bool,
) -> (
    std::sync::Arc<std::sync::Mutex<refresh_stand_in::Service>>,
    String,
) {
    let service = std::sync::Arc::new(std::sync::Mutex::new(refresh_stand_in::Service {
        auto: true,
        hold,
        ..Default::default()
    }));
    let addr = refresh_stand_in::serve(service.clone(), Some(m.endpoint.clone())).await;
    (service, format!("http://{addr}"))
}

/// Wait until the stand-in's newest refresh has `status` (at most a minute).
pub async fn wait_for_refresh(
    service: &std::sync::Arc<std::sync::Mutex<refresh_stand_in::Service>>,
    status: &str,
) {
    let t0 = std::time::Instant::now();
    loop {
        if service.lock().unwrap().refreshes.first().map(|r| r.status) == Some(status) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no refresh reached {status}: {:?}",
            service.lock().unwrap().refreshes
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `teal` against moto, its Auto Scaling calls through the stand-in at `proxy`.
pub fn teal_via(m: &Moto, proxy: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = teal(m, args);
    cmd.env("AWS_ENDPOINT_URL_AUTO_SCALING", proxy);
    cmd
}

/// Run `teal` to its end; assert its exit code (showing both streams if it
/// differs) and return (stdout, stderr).
pub async fn run_teal(m: &Moto, args: &[&str], code: i32) -> (String, String) {
    run(teal(m, args), args, code).await
}

/// Run `teal` through the refresh stand-in at `proxy` to its end; assert its
/// exit code and return (stdout, stderr).
pub async fn run_teal_via(m: &Moto, proxy: &str, args: &[&str], code: i32) -> (String, String) {
    run(teal_via(m, proxy, args), args, code).await
}

pub async fn run(mut cmd: tokio::process::Command, args: &[&str], code: i32) -> (String, String) {
    let out = cmd.output().await.expect("teal runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "teal {}:\n{stdout}\n{stderr}",
        args.join(" ")
    );
    (stdout, stderr)
}

/// `teal deploy --config CFG --image registry.example/app:2 EXTRA...` to its
/// end, asserting its exit code; returns (stdout, stderr).
pub async fn deploy_app_2(m: &Moto, cfg: &Path, extra: &[&str], code: i32) -> (String, String) {
    app_2(m, "deploy", cfg, extra, code).await
}

/// `teal COMMAND --config CFG --image registry.example/app:2 EXTRA...` (deploy
/// or verify) to its end, asserting its exit code; returns (stdout, stderr).
pub async fn app_2(
    m: &Moto,
    command: &str,
    cfg: &Path,
    extra: &[&str],
    code: i32,
) -> (String, String) {
    let mut args = vec![
        command,
        "--config",
        cfg.to_str().unwrap(),
        "--image",
        "registry.example/app:2",
    ];
    args.extend_from_slice(extra);
    run_teal(m, &args, code).await
}

/// `teal deploy --config CFG --image registry.example/app:2` started in the background.
pub fn spawn_deploy_app_2(m: &Moto, cfg: &Path) -> tokio::process::Child {
    teal(
        m,
        &[
            "deploy",
            "--config",
            cfg.to_str().unwrap(),
            "--image",
            "registry.example/app:2",
        ],
    )
    .spawn()
    .unwrap()
}

/// `teal status --output json`, parsed.
pub async fn status_json(m: &Moto, cfg: &Path) -> serde_json::Value {
    let (status, _) = run_teal(
        m,
        &[
            "status",
            "--config",
            cfg.to_str().unwrap(),
            "--output",
            "json",
        ],
        0,
    )
    .await;
    serde_json::from_str(status.trim()).unwrap()
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The mutating operations among the API calls a run reported.
pub fn mutating_calls(stdout: &str) -> Vec<String> {
    let Some(line) = stdout.lines().find(|l| l.starts_with("AWS API calls:")) else {
        return vec!["(no summary)".into()];
    };
    let read_only = ["Describe", "List", "Get"];
    line.split(['(', ')', ' '])
        .filter_map(|w| w.split_once('='))
        .map(|(op, _)| op.to_string())
        .filter(|op| !read_only.iter().any(|p| op.starts_with(p)))
        .collect()
}

/// The JSON lines of a run's `--output json` stdout (other lines skipped).
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The `api_calls` line of a run's JSON output.
pub fn api_calls_line(stdout: &str) -> serde_json::Value {
    json_lines(stdout)
        .into_iter()
        .rfind(|l| l["event"] == "api_calls")
        .unwrap_or_else(|| panic!("no api_calls line in {stdout}"))
}

/// Start `cmds` released at one instant: each behind one FIFO, read by a
/// shell that then `exec`s the command (its program, arguments and the
/// environment set on it), and all released by one EOF once every shell
/// waits on it. Their pids are the commands' own.
pub async fn at_once(cmds: Vec<tokio::process::Command>) -> Vec<tokio::process::Child> {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("barrier");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    let children: Vec<_> = cmds
        .iter()
        .map(|c| {
            let c = c.as_std();
            let mut sh = tokio::process::Command::new("sh");
            sh.arg("-c")
                .arg(r#"read -r _ < "$0" || true; exec "$@""#)
                .arg(&fifo)
                .arg(c.get_program())
                .args(c.get_args());
            for (k, v) in c.get_envs() {
                match v {
                    Some(v) => sh.env(k, v),
                    None => sh.env_remove(k),
                };
            }
            sh.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("sh runs")
        })
        .collect();
    // Every shell has opened the FIFO for reading once its `read` blocks;
    // give them the time to get there, then release all with one EOF.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
    children
}

/// What one process of a trial did.
pub struct Run {
    pub pid: u32,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The deployment id of this process's events.
    pub fn deployment(&self) -> Option<String> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v["deployment"].as_str().map(String::from))
    }

    /// The `api_calls` line: (accepted, rejected) operations.
    pub fn calls(&self) -> (Vec<String>, Vec<String>) {
        let line = self
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["event"] == "api_calls")
            .unwrap_or_else(|| panic!("no api_calls line:\n{}", self.stdout));
        let keys = |k: &str| {
            line[k]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        (keys("calls"), keys("rejected"))
    }
}

/// Wait (two minutes at most each) for `children` to end: what each did.
pub async fn finish(children: Vec<tokio::process::Child>) -> Vec<Run> {
    let mut runs = Vec::new();
    for child in children {
        let pid = child.id().expect("running");
        let out = tokio::time::timeout(
            std::time::Duration::from_secs(120),
            child.wait_with_output(),
        )
        .await
        .expect("a deploy of the race ends within two minutes")
        .unwrap();
        let (stdout, stderr) = text(&out);
        runs.push(Run {
            pid,
            code: out.status.code(),
            stdout,
            stderr,
        });
    }
    runs
}

/// Exactly one went on to an outcome; the other was refused (exit 5) naming
/// the winner's id and owner, and AWS carried out no change of its making.
/// Returns the winner's deployment id.
pub fn judge(trial: usize, runs: &[Run; 2]) -> String {
    let show = || {
        runs.iter()
            .map(|r| format!("exit {:?}\n{}\n{}", r.code, r.stdout, r.stderr))
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    let refused: Vec<&Run> = runs.iter().filter(|r| r.code == Some(5)).collect();
    let went_on: Vec<&Run> = runs.iter().filter(|r| r.code == Some(0)).collect();
    assert!(
        refused.len() == 1 && went_on.len() == 1,
        "trial {trial}: want one success and one refusal:\n{}",
        show()
    );
    let (loser, winner) = (refused[0], went_on[0]);
    let id = winner.deployment().expect("the winner's events name it");
    assert!(
        loser.stderr.contains(&id) && loser.stdout.contains(&id),
        "trial {trial}: the refusal names {id}:\n{}",
        show()
    );
    assert!(
        loser.stderr.contains(&format!(":{} ", winner.pid))
            || loser.stderr.contains(&format!(":{},", winner.pid)),
        "trial {trial}: the refusal names the owner (pid {}):\n{}",
        winner.pid,
        show()
    );
    let (accepted, rejected) = loser.calls();
    let changing: Vec<&String> = accepted
        .iter()
        .filter(|op| {
            !["Describe", "List", "Get", "Head"]
                .iter()
                .any(|p| op.starts_with(p))
        })
        .collect();
    assert!(
        changing.is_empty(),
        "trial {trial}: the loser's calls that AWS carried out change things: {changing:?}\n{}",
        show()
    );
    // A loser that lost the conditional write says so; one that read the
    // winner's record first made no write at all.
    assert!(
        rejected
            .iter()
            .all(|r| r.starts_with("PutItem:ConditionalCheckFailed")
                || r.starts_with("ChangeResourceRecordSets:InvalidChangeBatch")),
        "trial {trial}: rejected {rejected:?}"
    );
    id
}

//! The child process runner, the [`Hooks`] port's adapter: each hook a child
//! process, a string through `sh -c`, a list as the program and its
//! arguments. Each run gets the deployment's facts as
//! `TEAL_*` variables, its own process group (so a timeout kills what it
//! started too), and no stdin; the end of its output is kept as evidence.

use crate::hooks::{HookCommand, HookPoint, HookRun, HookState};
use crate::ports::{ErrorKind, Hooks, PortError};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines of a failed hook's output kept in its failure detail.
const TAIL_LINES: usize = 10;

/// The child process for `command`: a string through `sh -c`, a list as
/// the program and its arguments.
fn child(command: &HookCommand) -> tokio::process::Command {
    match command {
        HookCommand::Shell(s) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg(s);
            c
        }
        HookCommand::Argv(v) => {
            let mut c = tokio::process::Command::new(&v[0]);
            c.args(&v[1..]);
            c
        }
    }
}

/// Each run this process started, by deployment and run, with its state.
type Runs = HashMap<(String, HookRun), Arc<Mutex<HookState>>>;

/// Runs the configured hooks as child processes.
pub struct CommandHooks {
    commands: BTreeMap<HookPoint, HookCommand>,
    timeout: Duration,
    runs: Mutex<Runs>,
    /// Told when a run ends: a permit is kept if nobody waits, so an end
    /// between the driver's look at the state and its wait is not missed.
    ended: Arc<tokio::sync::Notify>,
}

impl CommandHooks {
    /// Hooks with these commands, each allowed `timeout`.
    pub fn new(commands: BTreeMap<HookPoint, HookCommand>, timeout: Duration) -> CommandHooks {
        CommandHooks {
            commands,
            timeout,
            runs: Mutex::new(HashMap::new()),
            ended: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

#[async_trait]
impl Hooks for CommandHooks {
    fn state(&self, deployment: &str, run: &HookRun) -> HookState {
        let runs = self.runs.lock().expect("hook runs");
        runs.get(&(deployment.to_string(), run.clone()))
            .map_or(HookState::NotStarted, |s| s.lock().expect("hook").clone())
    }

    async fn start(
        &self,
        deployment: &str,
        run: &HookRun,
        env: Vec<(String, String)>,
    ) -> Result<(), PortError> {
        let Some(command) = self.commands.get(&run.point).cloned() else {
            return Err(PortError::new(
                "hook.start",
                ErrorKind::Invalid,
                format!(
                    "the deployment has a {} hook but teal.toml's [hooks] has no {}",
                    run.point,
                    run.point.config_key()
                ),
            ));
        };
        let state = {
            let mut runs = self.runs.lock().expect("hook runs");
            let key = (deployment.to_string(), run.clone());
            if runs.contains_key(&key) {
                return Ok(());
            }
            let state = Arc::new(Mutex::new(HookState::Running));
            runs.insert(key, state.clone());
            state
        };
        let timeout = self.timeout;
        let ended = self.ended.clone();
        tokio::spawn(async move {
            let result = execute(&command, env, timeout).await;
            *state.lock().expect("hook") = result;
            ended.notify_one();
        });
        Ok(())
    }

    async fn ended(&self) {
        self.ended.notified().await
    }
}

/// Run `command` to its end or its timeout.
async fn execute(
    command: &HookCommand,
    env: Vec<(String, String)>,
    timeout: Duration,
) -> HookState {
    let started = Instant::now();
    let took = || started.elapsed().as_millis() as u64;
    let mut cmd = child(command);
    cmd.envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return HookState::Failed {
                detail: format!("could not start `{command}`: {e}"),
                took_ms: took(),
            }
        }
    };
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => HookState::Passed { took_ms: took() },
        Ok(Ok(out)) => HookState::Failed {
            detail: format!(
                "`{command}` {}{}",
                describe_status(out.status),
                tail(&out.stdout, &out.stderr)
            ),
            took_ms: took(),
        },
        Ok(Err(e)) => HookState::Failed {
            detail: format!("`{command}`: {e}"),
            took_ms: took(),
        },
        Err(_) => {
            // The child itself was killed when its future was dropped; its
            // process group takes whatever it started along.
            if let Some(pid) = pid {
                // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            HookState::Failed {
                detail: format!(
                    "`{command}` ran past its timeout of {} and was killed",
                    humantime::format_duration(timeout)
                ),
                took_ms: took(),
            }
        }
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => format!("ended: {status}"),
    }
}

/// The last lines of what the hook wrote (stderr, else stdout), for the failure's evidence.
fn tail(stdout: &[u8], stderr: &[u8]) -> String {
    let text = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        String::from_utf8_lossy(stderr)
    } else {
        String::from_utf8_lossy(stdout)
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let from = lines.len().saturating_sub(TAIL_LINES);
    format!(": {}", lines[from..].join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(command: HookCommand, timeout: Duration) -> HookState {
        let hooks = CommandHooks::new(
            BTreeMap::from([(HookPoint::BeforeTraffic, command)]),
            timeout,
        );
        let run = HookRun::at(HookPoint::BeforeTraffic);
        let env = vec![("TEAL_REVISION".to_string(), "v2".to_string())];
        hooks.start("d1", &run, env).await.expect("started");
        loop {
            match hooks.state("d1", &run) {
                HookState::Running => tokio::time::sleep(Duration::from_millis(10)).await,
                other => return other,
            }
        }
    }

    #[tokio::test]
    async fn a_hook_that_exits_zero_passes_and_sees_the_facts() {
        let state = run(
            HookCommand::Shell("test \"$TEAL_REVISION\" = v2".into()),
            Duration::from_secs(10),
        )
        .await;
        assert!(matches!(state, HookState::Passed { .. }), "{state:?}");
    }

    #[tokio::test]
    async fn a_failing_hook_reports_its_exit_code_and_the_end_of_its_output() {
        let state = run(
            HookCommand::Argv(vec![
                "sh".into(),
                "-c".into(),
                "echo checking; echo 'smoke: GET / answered 503' >&2; exit 3".into(),
            ]),
            Duration::from_secs(10),
        )
        .await;
        let HookState::Failed { detail, .. } = state else {
            panic!("{state:?}")
        };
        assert!(detail.contains("exited with 3"), "{detail}");
        assert!(detail.contains("smoke: GET / answered 503"), "{detail}");
    }

    #[tokio::test]
    async fn a_hook_past_its_timeout_fails_and_what_it_started_is_killed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("survived");
        // The grandchild would write the marker after 1 s if it outlived the kill.
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let state = run(HookCommand::Shell(script), Duration::from_millis(200)).await;
        let HookState::Failed { detail, .. } = state else {
            panic!("{state:?}")
        };
        assert!(detail.contains("timeout"), "{detail}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !marker.exists(),
            "the hook's background process outlived the timeout"
        );
    }

    #[tokio::test]
    async fn a_missing_program_fails_the_hook() {
        let state = run(
            HookCommand::Argv(vec!["/nonexistent/smoke".into()]),
            Duration::from_secs(10),
        )
        .await;
        assert!(
            matches!(&state, HookState::Failed { detail, .. } if detail.contains("could not start")),
            "{state:?}"
        );
    }

    #[tokio::test]
    async fn a_run_that_ends_says_so_even_to_a_driver_not_yet_waiting() {
        let hooks = CommandHooks::new(
            BTreeMap::from([(
                HookPoint::BeforeTraffic,
                HookCommand::Shell("exit 4".into()),
            )]),
            Duration::from_secs(10),
        );
        let run = HookRun::at(HookPoint::BeforeTraffic);
        hooks.start("d1", &run, vec![]).await.expect("started");
        // The run ends before anyone waits: the end is kept, not lost.
        while hooks.state("d1", &run) == HookState::Running {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::timeout(Duration::from_secs(5), hooks.ended())
            .await
            .expect("ended() resolves for a run that ended before the wait");
        // And only once for it: nothing else ended.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), hooks.ended())
                .await
                .is_err(),
            "ended() resolved again with no run ending"
        );
    }

    #[tokio::test]
    async fn starting_a_run_twice_runs_it_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let count = dir.path().join("count");
        let hooks = CommandHooks::new(
            BTreeMap::from([(
                HookPoint::BeforeTraffic,
                HookCommand::Shell(format!("echo x >> {}", count.display())),
            )]),
            Duration::from_secs(10),
        );
        let run = HookRun::at(HookPoint::BeforeTraffic);
        hooks.start("d1", &run, vec![]).await.expect("started");
        hooks.start("d1", &run, vec![]).await.expect("started");
        while hooks.state("d1", &run) == HookState::Running {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let lines = std::fs::read_to_string(&count)
            .expect("count")
            .lines()
            .count();
        assert_eq!(lines, 1);
    }
}

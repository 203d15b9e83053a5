//! The local provider as a user runs it: `teal local serve` as a child
//! process with blue v1 healthy, the config that reaches it, and `teal`
//! commands against it. Shared by `tests/local.rs` and the benchmark.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use teal::local::client::Admin;

pub const TEAL: &str = env!("CARGO_BIN_EXE_teal");

/// A strategy for the tests: a 10% canary baking `bake`, polls every 250 ms.
pub fn canary(bake: &str) -> String {
    format!(
        r#"canary = {{ percent = 10, bake = "{bake}" }}
keep_alive = "1s"
poll = "250ms"
green_healthy_timeout = "30s""#
    )
}

/// A daemon with blue v1 serving, and the config that reaches it.
pub struct Local {
    _dir: tempfile::TempDir,
    pub config: PathBuf,
    pub proxy: std::net::SocketAddr,
    pub admin: Admin,
    pub daemon: tokio::process::Child,
}

impl Local {
    /// `strategy` is the `[strategy]` table's body.
    pub async fn start(strategy: &str) -> Local {
        let fleet = format!(
            r#"command = [{TEAL:?}, "demo-app", "--port", "{{port}}", "--revision", "{{revision}}"]"#
        );
        Local::start_with(&fleet, "", strategy).await
    }

    /// `fleet` is the `[fleet]` table's body but its kind and instances (2),
    /// `extra` more tables (`[hooks]`), `strategy` the `[strategy]` table's body.
    pub async fn start_with(fleet: &str, extra: &str, strategy: &str) -> Local {
        // The ports are free when picked, but another test's daemon or
        // instance may take one before this daemon binds it: the daemon then
        // says "in use" and exits, and the start is tried on new ports.
        for _ in 0..5 {
            if let Some(local) = Local::try_start(fleet, extra, strategy).await {
                return local;
            }
        }
        panic!("five daemons in a row found a port taken");
    }

    async fn try_start(fleet: &str, extra: &str, strategy: &str) -> Option<Local> {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("teal.toml");
        let ports = teal::local::loopback::free_ports(2).unwrap();
        let (proxy, admin) = (ports[0], ports[1]);
        std::fs::write(
            &config,
            format!(
                r#"[service]
name = "hello"

[fleet]
kind = "local"
{fleet}
instances = 2

[router]
kind = "local"
listen = "127.0.0.1:{proxy}"
admin = "127.0.0.1:{admin}"

[gates.local]
max_5xx_percent = 5
max_p99 = "1s"
min_requests = 20
window = "3s"

{extra}

[strategy]
{strategy}
"#
            ),
        )
        .unwrap();
        let stderr = dir.path().join("daemon.stderr");
        let mut daemon = tokio::process::Command::new(TEAL)
            .args(["local", "serve", "--initial-revision", "v1", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let admin = Admin::new(&format!("127.0.0.1:{admin}"));
        let t0 = Instant::now();
        loop {
            use teal::ports::Fleet;
            if let Some(status) = daemon.try_wait().unwrap() {
                let said = std::fs::read_to_string(&stderr).unwrap_or_default();
                assert!(
                    said.contains("in use"),
                    "the daemon exited ({status}): {said}"
                );
                return None;
            }
            if let Ok(s) = admin.statuses().await {
                if s[0].healthy == 2 {
                    break;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "blue never became healthy"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(Local {
            _dir: dir,
            config,
            proxy: format!("127.0.0.1:{proxy}").parse().unwrap(),
            admin,
            daemon,
        })
    }

    pub fn teal(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(TEAL);
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("CODEBUILD_RESOLVED_SOURCE_VERSION")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    pub async fn run(&self, args: &[&str], code: i32) -> String {
        let out = self.teal(args).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "teal {args:?}:\n{stdout}\n{stderr}"
        );
        stdout
    }

    /// Requests the proxy sent to each revision, and how many failed.
    pub async fn per_revision(&self) -> Vec<(Option<String>, u64, u64)> {
        self.admin
            .stats()
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.revision, s.requests, s.failed))
            .collect()
    }
}

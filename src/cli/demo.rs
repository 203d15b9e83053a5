//! `teal local serve` and `teal demo`: the local provider from the command line.

use super::render::{self, Format};
use super::session::{owner, runtime};
use super::traffic::Traffic;
use super::Failure;
use crate::config::Config;
use crate::driver::{Driver, NewDeployment, Settings};
use crate::engine::{Outcome, Reason};
use crate::events::{Event, EventKind};
use crate::exit::Exit;
use crate::local::{client::Admin, daemon::Daemon, load::Load};
use crate::model::{fmt_ms, Green, Millis, Slot};
use crate::ports::{Clock, Fleet, SystemClock};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `teal local serve`: run the proxy, the instances, the gates and the ledger
/// until SIGINT or SIGTERM; with `initial`, start that revision in slot A.
pub(super) fn serve(config: &Config, initial: Option<String>) -> Result<Exit, Failure> {
    let (listen, admin) = addresses(config)?;
    let cfg = crate::local::daemon_config(config).ok_or_else(not_local)?;
    let instances = instances(config);
    // A worker thread per core, so the proxy uses the machine. Instances are
    // started from the admin API's tasks, which run on worker threads; those
    // live as long as the runtime, and PR_SET_PDEATHSIG fires when the thread
    // that started an instance exits, so instances still die with the daemon
    // and not before. (Never start one from `spawn_blocking`: those threads
    // exit when idle.)
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let daemon = Daemon::new(cfg);
        let (p, a) = daemon
            .bind(listen, admin)
            .await
            .map_err(|e| bind_failure(e, listen, admin))?;
        println!("teal proxy on http://{p}; admin API on http://{a}");
        if let Some(rev) = initial {
            let admin = Admin::new(&a.to_string());
            admin
                .provision(Slot::A, &Green::named(&rev), instances)
                .await
                .map_err(|e| Failure::Usage(e.to_string()))?;
            println!("blue: {rev} in slot a, {instances} instance(s)");
        }
        wait_for_signal().await?;
        println!("stopping every instance");
        daemon.shutdown().await;
        Ok(Exit::Succeeded)
    })
}

/// `teal demo [--bad] [--rolling] [--slow]`: the whole job on one machine, with real traffic.
pub(super) fn demo(
    bad: bool,
    rolling: bool,
    slow: bool,
    webhook: Option<(String, String)>,
    format: Format,
) -> Result<Exit, Failure> {
    let dir = tempfile_dir()?;
    let path = dir.join("teal.toml");
    let exe = std::env::current_exe()?;
    let ports = crate::local::loopback::free_ports(2)?;
    let (proxy_port, admin_port) = (ports[0], ports[1]);
    std::fs::write(
        &path,
        format!(
            r#"# Written by `teal demo`.
[service]
name = "demo"

[fleet]
kind = "local"
command = [{exe:?}, "demo-app", "--port", "{{port}}", "--revision", "{{revision}}"]
instances = 2
health_path = "/healthz"

[router]
kind = "local"
listen = "127.0.0.1:{proxy_port}"
admin = "127.0.0.1:{admin_port}"

[gates.local]
max_5xx_percent = 5
max_p99 = "500ms"
min_requests = 20
window = "3s"

[strategy]
{shape}
keep_alive = "3s"
poll = "250ms"
green_healthy_timeout = "30s"
{analysis}{notify}"#,
            exe = exe.display().to_string(),
            // The URL stays in this process's environment, out of the file.
            notify = match &webhook {
                Some((_, format)) => format!(
                    "\n[[notify.webhook]]\nurl_env = \"TEAL_DEMO_WEBHOOK\"\nformat = \"{format}\"\n"
                ),
                None => String::new(),
            },
            // A canary is judged against blue second by second (a rolling
            // update has no second slot to compare with).
            analysis = if rolling {
                ""
            } else {
                r#"
[analysis]
period = "1s"
late = "1s"
min_points = 5

[[analysis.metric]]
preset = "alb-5xx-share"
critical = true

[[analysis.metric]]
preset = "alb-latency"
critical = true
# Green's mean may be up to twice blue's: sub-millisecond latencies on a busy
# machine wobble that much; --slow's green is 150 ms against blue's 20 ms.
allowed_effect = 1.0
"#
            },
            shape = if rolling {
                // One extra instance at a time, then bake.
                r#"rolling = { min_healthy_percent = 100, max_percent = 150, bake = "6s" }"#
            } else {
                r#"canary = { percent = 10, bake = "8s" }"#
            }
        ),
    )?;
    if let Some((url, _)) = &webhook {
        // Read back by the config's `url_env`, before any thread starts.
        std::env::set_var("TEAL_DEMO_WEBHOOK", url);
    }
    let config = Config::load(&path, None)?;
    config.check_driving()?;
    // A rolling demo's new instances answer 503 for their first second: the
    // proxy must not route to them before their health check passes.
    let revision = match (bad, rolling, slow) {
        (true, _, _) => "v2+fail=0.3",
        (_, true, _) => "v2+slow-start=1s",
        // Seven and a half times blue's latency, far under the gate's 500ms
        // p99. (Three times, 60 ms, passed the comparison on a loaded 2-core
        // machine: queueing added to both slots brought the ratio under 2.)
        (_, _, true) => "v2+latency=150ms",
        _ => "v2",
    };
    let blue = if slow { "v1+latency=20ms" } else { "v1" };
    let result = runtime()?.block_on(run_demo(&config, blue, revision, format));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_demo(
    config: &Config,
    blue: &str,
    revision: &str,
    format: Format,
) -> Result<Exit, Failure> {
    let rolling = matches!(config.strategy.shape, crate::strategy::Shape::Rolling(_));
    let (listen, admin_addr) = addresses(config)?;
    let daemon = Daemon::new(crate::local::daemon_config(config).ok_or_else(not_local)?);
    let (proxy, admin_addr) = daemon
        .bind(listen, admin_addr)
        .await
        .map_err(|e| bind_failure(e, listen, admin_addr))?;
    let admin = Admin::new(&admin_addr.to_string());
    let traffic = Arc::new(Mutex::new(Traffic::new(super::progress::Mode::detect())));
    let say = |line: String| {
        if format == Format::Text {
            let at = crate::model::fmt_time(SystemClock.now());
            traffic
                .lock()
                .expect("traffic")
                .line(&format!("{at}  {line}"));
        }
    };
    say(format!(
        "teal's proxy on http://{proxy}; starting blue {blue} (2 instances)"
    ));
    admin
        .provision(Slot::A, &Green::named(blue), instances(config))
        .await
        .map_err(|e| Failure::Usage(e.to_string()))?;
    while admin.status(Slot::A).await.map_or(0, |s| s.healthy) < instances(config) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let load = Load::start(proxy, 4);
    say("a steady load of 4 clients runs through the proxy".into());
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Each slot's weight, request and error rate, once a second, while the
    // deployment runs: lines in a log, bars in place on a terminal.
    let ticker = {
        let admin = admin.clone();
        let traffic = traffic.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if format != Format::Text {
                    continue;
                }
                // In place, the instances say more than the (single) slot's split.
                let instances = match (rolling, admin.instances().await) {
                    (true, Ok(instances)) => Some(
                        instances
                            .iter()
                            .map(|i| {
                                let starting = if i.healthy { "" } else { " (starting)" };
                                format!("{}{starting}", i.revision)
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    _ => None,
                };
                if let Ok(stats) = admin.stats().await {
                    let at = crate::model::fmt_time(SystemClock.now());
                    traffic
                        .lock()
                        .expect("traffic")
                        .update(&at, &stats, instances);
                }
            }
        })
    };

    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = {
        let events = events.clone();
        let traffic = traffic.clone();
        Box::new(move |e: &Event| {
            match format {
                Format::Text => {
                    let mut line = Vec::new();
                    let _ = render::write_event(&mut line, format, e);
                    let line = String::from_utf8_lossy(&line);
                    traffic.lock().expect("traffic").line(line.trim_end());
                }
                Format::Json => {
                    let _ = render::write_event(&mut std::io::stdout().lock(), format, e);
                }
            }
            events.lock().expect("events").push(e.clone());
        })
    };
    let plan = config.plan()?;
    let spec = NewDeployment {
        id: super::deploy::deployment_id(SystemClock.now()),
        service: config.service.clone(),
        revision: revision.to_string(),
        plan,
        gates: config.gates.names(),
        allow_alarm_at_start: false,
        green: None,
        build: None,
        release: None,
    };
    if crate::wiring::Provider::of(config) != crate::wiring::Provider::Local {
        return Err(not_local());
    }
    let mut wired = crate::wiring::wire(config, &crate::wiring::Cloud::default(), None).await?;
    let delivery = wired.start_notifying();
    let sink = delivery.wrap(sink);
    let outcome = async {
        let mut d = Driver::start(wired.ports.clone(), Settings::new(owner()), spec, sink).await?;
        d.run().await
    }
    .await;
    ticker.abort();
    traffic.lock().expect("traffic").finish();
    let counts = load.stop().await;
    daemon.shutdown().await;
    let told = delivery.finish().await;
    let outcome = outcome?;

    let events = events.lock().expect("events").clone();
    if format == Format::Text {
        println!();
        println!("outcome: {outcome}");
        println!(
            "clients sent {} requests: {} answered 2xx, {} failed (5xx), {} connection errors",
            counts.sent, counts.ok, counts.failed, counts.errors
        );
        if !config.notify.targets.is_empty() {
            println!(
                "webhook: {} notification(s) delivered, {} not",
                told.delivered, told.failed
            );
        }
        if let Outcome::RolledBack {
            reason: Reason::GateFailed { gate, seen_at, .. },
        } = &outcome
        {
            let at = |f: &dyn Fn(&EventKind) -> bool, from: Millis| {
                events
                    .iter()
                    .find(|e| e.at >= from && f(&e.kind))
                    .map(|e| e.at)
            };
            // When the new revision first took traffic, and when the old one had it all again.
            let (from, back, what) = if rolling {
                (
                    at(
                        &|k| matches!(k, EventKind::RolloutAction { action } if action == "start"),
                        0,
                    ),
                    at(
                        &|k| {
                            matches!(
                                k,
                                EventKind::RolloutState {
                                    state: crate::model::RolloutState::RolledBack { .. }
                                }
                            )
                        },
                        *seen_at,
                    ),
                    "the update started",
                )
            } else {
                (
                    at(
                        &|k| matches!(k, EventKind::WeightsSet { weights } if weights.green > 0),
                        0,
                    ),
                    at(
                        &|k| matches!(k, EventKind::WeightsSet { weights } if weights.green == 0),
                        *seen_at,
                    ),
                    "green took traffic",
                )
            };
            if let (Some(g), Some(b)) = (from, back) {
                println!(
                    "detection: {what}, gate {gate} read ALARM {} later, and all traffic was back on {} {} after that",
                    fmt_ms(seen_at.saturating_sub(g)),
                    if rolling { "the previous revision" } else { "blue" },
                    fmt_ms(b.saturating_sub(*seen_at))
                );
            }
        }
    }
    Ok(Exit::for_outcome(&outcome))
}

fn addresses(config: &Config) -> Result<(std::net::SocketAddr, std::net::SocketAddr), Failure> {
    match &config.router {
        crate::config::RouterConfig::Local { listen, admin } => Ok((
            listen.parse().map_err(|_| not_local())?,
            admin.parse().map_err(|_| not_local())?,
        )),
        _ => Err(not_local()),
    }
}

fn instances(config: &Config) -> u32 {
    match &config.fleet {
        crate::config::FleetConfig::Local { instances, .. } => *instances,
        _ => 1,
    }
}

/// An address already taken is bad input (exit 2), not an unexpected error.
fn bind_failure(
    e: std::io::Error,
    proxy: std::net::SocketAddr,
    admin: std::net::SocketAddr,
) -> Failure {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        Failure::Usage(format!(
            "router.listen {proxy} or router.admin {admin} is in use (another `teal local serve`?): {e}"
        ))
    } else {
        Failure::Io(e)
    }
}

fn not_local() -> Failure {
    Failure::Usage("this needs a config with fleet and router of kind \"local\"".into())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("teal-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn wait_for_signal() -> Result<(), Failure> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

//! Crash recovery against moto: `teal deploy` killed with SIGKILL, then
//! `teal status`, `teal resume` and `teal rollback` from new processes.

#[path = "support/aws.rs"]
mod support;

use std::time::{Duration, Instant};
use support::*;

/// The deployment record's phase, read from the ledger table as teal keeps it.
async fn ledger_phase(c: &Clients, f: &Fixture) -> Option<teal::engine::Phase> {
    ledger_record(c, &f.listener).await.map(|r| r.phase)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_bake_shows_in_status_and_resumes_to_success() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let (f, _dir, cfg, ecs) = killed_at(&m, &c, KillPoint::MidBake).await;
    let cfg_s = cfg.to_str().unwrap();

    let (stdout, _) = run_teal(&m, &["status", "--config", cfg_s, "--output", "json"], 0).await;

    let s: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("status is one JSON document");
    assert_eq!(s["schema"], 1);
    assert_eq!(s["phase"], "shifting");
    assert_eq!(s["step"], serde_json::json!([1, 2]));
    assert_eq!(s["weights_actual"]["green"], 50);
    assert_eq!(s["green"]["healthy"], 2);
    assert!(s["lock"]["owner"].as_str().unwrap().contains('@'), "{s}");
    assert!(
        s["next"]
            .as_str()
            .unwrap()
            .starts_with("step 2/2: 100% to green at"),
        "{s}"
    );

    // The dead process's lock has not expired: a plain resume is refused, naming it.
    let (_, stderr) = run_teal(&m, &["resume", "--config", cfg_s], 5).await;

    assert!(
        stderr.contains(s["deployment"].as_str().unwrap()),
        "{stderr}"
    );

    let (stdout, _) = run_teal(&m, &["resume", "--config", cfg_s, "--force"], 0).await;
    ecs.abort();

    assert!(
        stdout.contains("taking over the deployment (shifting) from"),
        "{stdout}"
    );
    assert_eq!(weights(&c, &f).await, (0, 100));
    assert_eq!(
        active_services(&c, &f).await,
        vec![format!("{}-b", f.name)],
        "one green, blue gone, no duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_bake_rolls_back_from_another_process() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let (f, _dir, cfg, ecs) = killed_at(&m, &c, KillPoint::MidBake).await;

    let (stdout, _) = run_teal(&m, &["rollback", "--config", cfg.to_str().unwrap()], 3).await;
    ecs.abort();

    assert!(
        stdout.contains("outcome: RolledBack: operator ran `teal rollback`"),
        "{stdout}"
    );
    assert_eq!(weights(&c, &f).await, (100, 0));
    assert_eq!(
        active_services(&c, &f).await,
        vec![f.name.clone()],
        "green removed, blue kept"
    );

    // Nothing left to roll back.
    let (_, stderr) = run_teal(&m, &["rollback", "--config", cfg.to_str().unwrap()], 2).await;

    assert!(stderr.contains("it has ended"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_with_no_deployment_says_so() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let (_dir, cfg) = config(&f, KILLABLE);
    let (stdout, _) = run_teal(&m, &["status", "--config", cfg.to_str().unwrap()], 0).await;

    assert_eq!(
        stdout.trim(),
        format!("no deployment is recorded for {}", f.name)
    );
    let out = teal(&m, &["resume", "--config", cfg.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("no deployment is recorded"));
}

/// Where the harness kills `teal deploy`.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// Green created, not yet healthy.
    Provisioning,
    /// The listener has just taken the first step's weights; the ledger may
    /// not have recorded them yet.
    AfterWeightChange,
    /// The step's weights are recorded; the bake is running.
    MidBake,
    /// Green holds 100%; blue is kept for the keep-alive.
    KeepAlive,
}

const KILL_POINTS: [KillPoint; 4] = [
    KillPoint::Provisioning,
    KillPoint::AfterWeightChange,
    KillPoint::MidBake,
    KillPoint::KeepAlive,
];

const KILLABLE: &str = r#"canary = { percent = 50, bake = "6s" }
keep_alive = "6s"
poll = "1s"
green_healthy_timeout = "60s""#;

/// A fresh service, a `teal deploy` SIGKILLed at `point`, and the target
/// registration stand-in (still running) for what follows.
async fn killed_at(
    m: &Moto,
    c: &Clients,
    point: KillPoint,
) -> (
    Fixture,
    tempfile::TempDir,
    std::path::PathBuf,
    tokio::task::JoinHandle<()>,
) {
    let f = fixture(c, Forward::Weighted).await;
    // While provisioning, green's targets stay unhealthy until the kill.
    let green = format!("{}-b", f.name);
    let skip = matches!(point, KillPoint::Provisioning).then(|| green.clone());
    let ecs = register_targets_like_ecs(c, &f, skip);
    let (dir, cfg) = config(&f, KILLABLE);
    let mut child = spawn_deploy_app_2(m, &cfg);
    let t0 = Instant::now();
    loop {
        let w = weights(c, &f).await;
        let hit = match point {
            KillPoint::Provisioning => active_services(c, &f).await.contains(&green),
            KillPoint::AfterWeightChange => w == (50, 50),
            KillPoint::MidBake => {
                w == (50, 50)
                    && matches!(
                        ledger_phase(c, &f).await,
                        Some(teal::engine::Phase::Shifting {
                            reached: Some(_),
                            ..
                        })
                    )
            }
            KillPoint::KeepAlive => {
                w == (0, 100)
                    && matches!(
                        ledger_phase(c, &f).await,
                        Some(teal::engine::Phase::KeepAlive { since: Some(_) })
                    )
            }
        };
        if hit {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{point:?} was never reached"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap(); // SIGKILL: no cleanup, no ledger write
    child.wait().await.unwrap();
    let ecs = if matches!(point, KillPoint::Provisioning) {
        ecs.abort();
        register_targets_like_ecs(c, &f, None)
    } else {
        ecs
    };
    (f, dir, cfg, ecs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_point_resume_reaches_success() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    for point in KILL_POINTS {
        eprintln!("kill point: {point:?}");
        let (f, _dir, cfg, ecs) = killed_at(&m, &c, point).await;
        let cfg = cfg.to_str().unwrap();
        let (stdout, _) = run_teal(&m, &["status", "--config", cfg, "--output", "json"], 0).await;
        let s: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert!(s["outcome"].is_null(), "{point:?}: in flight: {s}");

        let (stdout, _) = run_teal(&m, &["resume", "--config", cfg, "--force"], 0).await;
        ecs.abort();

        assert!(stdout.contains("outcome: Succeeded"), "{point:?}: {stdout}");
        assert!(
            !stdout.contains("creating green"),
            "{point:?}: green existed already; it must not be created again:\n{stdout}"
        );
        assert_eq!(weights(&c, &f).await, (0, 100), "{point:?}");
        assert_eq!(
            active_services(&c, &f).await,
            vec![format!("{}-b", f.name)],
            "{point:?}: one green, blue retired, no duplicates"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_point_rollback_restores_blue() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    for point in KILL_POINTS {
        eprintln!("kill point: {point:?}");
        let (f, _dir, cfg, ecs) = killed_at(&m, &c, point).await;
        let cfg = cfg.to_str().unwrap();

        // No --force: the dead driver does not answer, so rollback takes over.
        let (stdout, _) = run_teal(&m, &["rollback", "--config", cfg], 3).await;
        ecs.abort();

        assert!(
            stdout.contains("did not answer") && stdout.contains("taking the deployment over"),
            "{point:?}: {stdout}"
        );
        assert!(
            stdout.contains("outcome: RolledBack: operator ran `teal rollback`"),
            "{point:?}: {stdout}"
        );
        assert_eq!(weights(&c, &f).await, (100, 0), "{point:?}");
        assert_eq!(
            active_services(&c, &f).await,
            vec![f.name.clone()],
            "{point:?}: green removed, blue kept"
        );
    }
}

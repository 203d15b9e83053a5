//! Operator commands from a second process while `teal deploy` drives the
//! deployment, against moto: the commands are queued in the ledger and
//! applied by the running driver, which keeps watching the gates.

#[path = "support/aws.rs"]
mod support;

use std::time::Duration;
use support::*;

/// Bakes far longer than the test: nothing moves unless an operator moves it.
const LONG_BAKES: &str = r#"canary = { percent = 10, bake = "10m" }
keep_alive = "10m"
poll = "1s"
green_healthy_timeout = "30s""#;

async fn status_json(m: &Moto, cfg: &str) -> serde_json::Value {
    let (stdout, _) = run_teal(m, &["status", "--config", cfg, "--output", "json"], 0).await;
    serde_json::from_str(stdout.trim()).expect("status is one JSON document")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shift_promote_and_rollback_reach_a_running_deployment() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (_dir, cfg) = config(&f, LONG_BAKES);
    let cfg = cfg.to_str().unwrap();
    let deploy = teal(
        &m,
        &[
            "deploy",
            "--config",
            cfg,
            "--image",
            "registry.example/app:2",
        ],
    )
    .spawn()
    .unwrap();
    wait_for_weights(&c, &f, (90, 10)).await;

    let (stdout, _) = run_teal(&m, &["shift", "--to", "green", "25%", "--config", cfg], 0).await;

    assert!(stdout.contains("queued for"), "{stdout}");
    assert!(stdout.contains("`teal shift` applied"), "{stdout}");
    wait_for_weights(&c, &f, (75, 25)).await;
    let s = status_json(&m, cfg).await;
    assert_eq!(s["phase"], "shifting");
    assert_eq!(
        s["hold"],
        serde_json::json!({ "hold": "manual", "green": 25, "ignore_gates": false })
    );
    assert_eq!(s["weights_set"]["green"], 25);
    assert_eq!(s["weights_actual"]["green"], 25);
    assert!(
        s["next"].as_str().unwrap().starts_with("held at 25%"),
        "{s}"
    );
    // The running driver still owns the deployment: nothing was taken over.
    assert!(!s["lock"]["owner"].is_null());

    run_teal(&m, &["promote", "--full", "--config", cfg], 0).await;

    wait_for_weights(&c, &f, (0, 100)).await;
    let s = status_json(&m, cfg).await;
    assert_eq!(s["phase"], "keep_alive");
    assert_eq!(s["hold"], serde_json::Value::Null);

    let (stdout, _) = run_teal(&m, &["rollback", "--config", cfg], 3).await;

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
    // The deploy process itself carried out the rollback and says so.
    let out = tokio::time::timeout(Duration::from_secs(30), deploy.wait_with_output())
        .await
        .expect("deploy ends after the rollback")
        .unwrap();
    ecs.abort();
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("`teal shift` from"), "{stdout}");
    assert!(stdout.contains("`teal rollback` from"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_the_driver_would_refuse_is_refused_without_queuing() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (_dir, cfg) = config(&f, LONG_BAKES);
    let cfg = cfg.to_str().unwrap();
    let _deploy = teal(
        &m,
        &[
            "deploy",
            "--config",
            cfg,
            "--image",
            "registry.example/app:2",
        ],
    )
    .spawn()
    .unwrap();
    wait_for_weights(&c, &f, (90, 10)).await;

    let (_, stderr) = run_teal(&m, &["retire", "--config", cfg], 2).await;
    ecs.abort();

    assert!(
        stderr.contains(
            "cannot retire while the deployment is shifting: green does not hold 100% yet"
        ),
        "{stderr}"
    );
    assert_eq!(weights(&c, &f).await, (90, 10), "nothing moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_then_reconcile_passes_drive_the_deployment_to_success() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (_dir, cfg) = config(&f, FAST_CANARY);
    let cfg = cfg.to_str().unwrap();

    let (stdout, _) = run_teal(
        &m,
        &[
            "deploy",
            "--detach",
            "--config",
            cfg,
            "--image",
            "registry.example/app:2",
        ],
        0,
    )
    .await;

    let id = stdout
        .lines()
        .find(|l| l.starts_with("d-"))
        .unwrap_or_else(|| panic!("the id on a line of its own: {stdout}"))
        .to_string();
    let s = status_json(&m, cfg).await;
    assert_eq!(s["deployment"], id.as_str());
    assert!(
        s["lock"].is_null(),
        "a detached deployment holds no lock: {s}"
    );
    assert!(s["outcome"].is_null());

    // A scheduled job, every second here.
    let mut passes = 0;
    let t0 = std::time::Instant::now();
    loop {
        let (stdout, _) = run_teal(&m, &["reconcile", "--once", "--config", cfg], 0).await;
        passes += 1;
        if stdout.contains("outcome: Succeeded") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "no outcome: {stdout}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    ecs.abort();

    assert!(
        passes >= 3,
        "the bake and keep-alive span several passes ({passes})"
    );
    assert_eq!(weights(&c, &f).await, (0, 100));
    assert_eq!(active_services(&c, &f).await, vec![format!("{}-b", f.name)]);
    let (stdout, _) = run_teal(&m, &["reconcile", "--once", "--config", cfg], 0).await;
    assert!(stdout.contains("has ended; nothing to do"), "{stdout}");
}

//! Tier 3: the rolling strategy on ECS against moto with the real SDK: the
//! service named in config updated in place, gates watched throughout, and
//! put back on its previous task definition when a gate fails.

#[path = "support/aws.rs"]
mod support;

use aws_sdk_cloudwatch::types::StateValue;
use std::time::Duration;
use support::*;

const ROLLING: &str = FAST_ROLLING;

/// The fixture's (blue's) service as ECS describes it.
async fn service(c: &Clients, f: &Fixture) -> aws_sdk_ecs::types::Service {
    c.ecs
        .describe_services()
        .cluster(&f.cluster)
        .services(&f.name)
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone()
}

/// A rolling update with a 60 s bake started in the background on a new
/// fixture, waited for until the service runs the new task definition:
/// the fixture, blue's task definition, the config (and its directory) and
/// the deploy process.
async fn slow_rolling_update_under_way(
    m: &Moto,
    c: &Clients,
) -> (
    Fixture,
    String,
    (tempfile::TempDir, std::path::PathBuf),
    tokio::process::Child,
) {
    let f = fixture(c, Forward::Weighted).await;
    let (blue_td, _) = service_task(c, &f).await;
    let (dir, cfg) = one_target_group(&f, &ROLLING.replace("bake = \"3s\"", "bake = \"60s\""));
    let child = spawn_deploy_app_2(m, &cfg);
    wait_for_update(c, &f, &blue_td).await;
    (f, blue_td, (dir, cfg), child)
}

/// A new fixture with a rolling config for one target group: clients, the
/// fixture, blue's task definition, the config (and its directory).
async fn rolling_fixture(
    m: &Moto,
) -> (
    Clients,
    Fixture,
    String,
    (tempfile::TempDir, std::path::PathBuf),
) {
    let c = clients(m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let (blue_td, _) = service_task(&c, &f).await;
    let config = one_target_group(&f, ROLLING);
    (c, f, blue_td, config)
}

/// Wait (at most a minute) until the service runs another task definition than `blue_td`.
async fn wait_for_update(c: &Clients, f: &Fixture, blue_td: &str) {
    let t0 = std::time::Instant::now();
    while service_task(c, f).await.0 == blue_td {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the update never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The service's task definition ARN and its container image.
async fn service_task(c: &Clients, f: &Fixture) -> (String, String) {
    let td = service(c, f).await.task_definition().unwrap().to_string();
    let d = c
        .ecs
        .describe_task_definition()
        .task_definition(&td)
        .send()
        .await
        .unwrap();
    let image = d.task_definition().unwrap().container_definitions()[0]
        .image()
        .unwrap()
        .to_string();
    (td, image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_replaces_the_task_definition_in_place() {
    let Some(m) = moto() else { return };
    let (c, f, blue_td, (_dir, cfg)) = rolling_fixture(&m).await;
    let (stdout, stderr) = deploy_app_2(&m, &cfg, &[], 0).await;
    assert!(
        stdout.contains("starting the rolling update"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("rolling update completed"), "{stdout}");
    let (td, image) = service_task(&c, &f).await;
    assert_ne!(td, blue_td);
    assert_eq!(image, "registry.example/app:2");
    // One service, updated in place: no second service, no weight moved.
    assert_eq!(active_services(&c, &f).await, vec![f.name.clone()]);
    assert_eq!(weights(&c, &f).await, (100, 0));
    // The update asked for the strategy's bounds and the circuit breaker.
    let s = service(&c, &f).await;
    let dc = s.deployment_configuration().unwrap();
    assert_eq!(dc.minimum_healthy_percent(), Some(50));
    assert_eq!(dc.maximum_percent(), Some(200));
    let breaker = dc.deployment_circuit_breaker().unwrap();
    assert!(breaker.enable() && breaker.rollback());
    // status reads the rolling deployment back.
    let status = status_json(&m, &cfg).await;
    assert_eq!(status["outcome"]["outcome"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_during_a_rolling_update_puts_the_previous_task_definition_back() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    // Mid-way: once the service runs the new task definition.
    let (f, blue_td, (_dir, _cfg), child) = slow_rolling_update_under_way(&m, &c).await;
    set_alarm(&c, &f.alarms[0], StateValue::Alarm).await;
    let out = child.wait_with_output().await.unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("putting the previous revision back"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&f.alarms[0]),
        "the alarm is named: {stdout}"
    );
    let (td, image) = service_task(&c, &f).await;
    assert_eq!(td, blue_td, "back on the previous task definition");
    assert_eq!(image, "registry.example/app:1");
    // The previous task definition was never deregistered.
    let prev = c
        .ecs
        .describe_task_definition()
        .task_definition(&blue_td)
        .send()
        .await
        .unwrap();
    assert_eq!(
        prev.task_definition().unwrap().status(),
        Some(&aws_sdk_ecs::types::TaskDefinitionStatus::Active)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_target_group_refuses_a_blue_green_strategy() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let (_dir, cfg) = one_target_group(&f, FAST_CANARY);
    for cmd in ["plan", "deploy"] {
        let (_, stderr) = run_teal(&m, &[cmd, "--config", cfg.to_str().unwrap()], 2).await;
        assert!(
            stderr.contains("only a rolling strategy is possible"),
            "{cmd}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_pause_inspect_and_roll_back_a_rolling_update() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let (f, blue_td, (_dir, cfg), child) = slow_rolling_update_under_way(&m, &c).await;
    let cfg_s = cfg.to_str().unwrap();
    run_teal(&m, &["pause", "--config", cfg_s], 0).await;
    let status = status_json(&m, &cfg).await;
    assert_eq!(status["phase"], "updating");
    assert_eq!(status["rollout"]["rollout"], "completed", "{status}");
    assert_eq!(status["hold"]["hold"], "paused", "{status}");
    // No traffic split to shift, no second fleet to retire.
    let (_, stderr) = run_teal(&m, &["shift", "--to", "green", "50%", "--config", cfg_s], 2).await;
    assert!(
        stderr.contains("a rolling update has no traffic split"),
        "{stderr}"
    );
    let (stdout, _) = run_teal(&m, &["rollback", "--config", cfg_s], 3).await;
    assert!(stdout.contains("operator ran `teal rollback`"), "{stdout}");
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out).0);
    assert_eq!(
        service_task(&c, &f).await.0,
        blue_td,
        "back on the previous task definition"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_before_the_update_and_after_its_bake() {
    let Some(m) = moto() else { return };
    let (c, f, blue_td, (dir, cfg)) = rolling_fixture(&m).await;
    let (log, line) = logging_hook(dir.path());
    with_hooks(
        &cfg,
        &format!("before_traffic = {line:?}\nafter_step = {line:?}"),
    );
    let (stdout, stderr) = deploy_app_2(&m, &cfg, &[], 0).await;
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        vec!["before-traffic 0/1 0", "after-step 1/1 100"],
        "{stdout}\n{stderr}"
    );
    // before-traffic ran before the update started, after-step after it finished.
    let at = |needle: &str| {
        stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in {stdout}"))
    };
    assert!(at("hook before-traffic passed") < at("starting the rolling update"));
    assert!(at("rolling update completed") < at("hook after-step 1 passed"));
    assert_ne!(service_task(&c, &f).await.0, blue_td);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_after_step_hook_puts_the_previous_task_definition_back() {
    let Some(m) = moto() else { return };
    let (c, f, blue_td, (_dir, cfg)) = rolling_fixture(&m).await;
    with_hooks(
        &cfg,
        "after_step = \"echo 'smoke: /checkout answered 500' >&2; exit 1\"",
    );
    let (stdout, _) = deploy_app_2(&m, &cfg, &[], 3).await;
    assert!(
        stdout.contains("the after-step 1 hook failed")
            && stdout.contains("smoke: /checkout answered 500"),
        "{stdout}"
    );
    assert_eq!(
        service_task(&c, &f).await.0,
        blue_td,
        "back on the previous task definition"
    );
}

//! Tier 3: lifecycle hooks against moto with the real SDK. The hooks are
//! real child processes; what they were told comes back through a file.

#[path = "support/aws.rs"]
mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_before_traffic_hook_rolls_back_before_any_production_weight_moves() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (dir, cfg) = config(&f, FAST_CANARY);
    let told = dir.path().join("told");
    with_hooks(
        &cfg,
        &format!(
            r#"before_traffic = "env | grep ^TEAL_ | sort > {told}; echo 'smoke: GET /health answered 503' >&2; exit 1"
timeout = "30s""#,
            told = told.display()
        ),
    );
    let report = dir.path().join("report.json");
    let (stdout, stderr) = deploy_app_2(&m, &cfg, &["--report", report.to_str().unwrap()], 3).await;
    ecs.abort();
    // No production weight moved: the listener was never written, and reads 100% blue.
    let mutating = mutating_calls(&stdout);
    assert!(
        !mutating.iter().any(|op| op == "ModifyListener"),
        "{mutating:?}\n{stdout}"
    );
    assert_eq!(weights(&c, &f).await, (100, 0));
    assert_eq!(
        active_services(&c, &f).await,
        vec![f.name.clone()],
        "green removed, blue kept"
    );
    // The last lines say what failed, why, and the evidence (the hook's stderr).
    assert!(
        stdout.contains("the before-traffic hook failed")
            && stdout.contains("exited with 1")
            && stdout.contains("smoke: GET /health answered 503"),
        "{stdout}\n{stderr}"
    );
    // The hook was told the deployment's facts, green carrying nothing yet.
    let told = std::fs::read_to_string(&told).unwrap();
    for fact in [
        "TEAL_HOOK=before-traffic",
        "TEAL_REVISION=2",
        "TEAL_GREEN_WEIGHT=0",
        "TEAL_STEP=0",
        "TEAL_GREEN_SLOT=b",
        &format!("TEAL_SERVICE={}", f.name),
    ] {
        assert!(told.lines().any(|l| l == fact), "{fact} not in:\n{told}");
    }
    // The report names the hook as the reason.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["outcome"]["reason"]["kind"], "hook_failed");
    assert_eq!(report["outcome"]["reason"]["hook"], "before-traffic");
    assert_eq!(report["calls"]["ModifyListener"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_at_their_points_in_order_with_the_weight_of_the_moment() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (dir, cfg) = config(&f, FAST_CANARY);
    let (log, line) = logging_hook(dir.path());
    with_hooks(
        &cfg,
        &format!(
            "before_traffic = {line:?}\nafter_step = {line:?}\nbefore_retire = [\"sh\", \"-c\", {line:?}]"
        ),
    );
    let (stdout, stderr) = deploy_app_2(&m, &cfg, &[], 0).await;
    ecs.abort();
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        vec![
            "before-traffic 0/2 0",
            "after-step 1/2 50",
            "after-step 2/2 100",
            "before-retire 2/2 100",
        ],
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("hook after-step 2 passed"), "{stdout}");
    assert_eq!(weights(&c, &f).await, (0, 100));
}

/// A second listener on the fixture's load balancer (port 8080), plainly
/// forwarding to slot A, named in the config as the test listener.
async fn add_test_listener(c: &Clients, f: &Fixture, cfg: &std::path::Path) -> String {
    use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};
    let lb = c
        .elb
        .describe_listeners()
        .listener_arns(&f.listener)
        .send()
        .await
        .unwrap()
        .listeners()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let test = c
        .elb
        .create_listener()
        .load_balancer_arn(lb)
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&f.tg_a)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .listeners()[0]
        .listener_arn()
        .unwrap()
        .to_string();
    let text = std::fs::read_to_string(cfg).unwrap();
    let text = text.replacen(
        "[gates]",
        &format!("test_listener_arn = {test:?}\n\n[gates]"),
        1,
    );
    std::fs::write(cfg, text).unwrap();
    test
}

/// The test listener's weights (slot A, slot B).
async fn listener_weights(c: &Clients, arn: &str) -> (i32, i32) {
    let l = c
        .elb
        .describe_listeners()
        .listener_arns(arn)
        .send()
        .await
        .unwrap();
    let forward = &l.listeners()[0].default_actions()[0];
    match forward.forward_config() {
        Some(fc) if !fc.target_groups().is_empty() => {
            let w = |i: usize| fc.target_groups()[i].weight().unwrap_or(1);
            (w(0), w(1))
        }
        _ => (100, 0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_listener_sends_green_test_traffic_before_production_and_goes_back_on_failure() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;

    // Passing: the hook runs with the test listener on green, production untouched.
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (dir, cfg) = config(&f, FAST_CANARY);
    let test = add_test_listener(&c, &f, &cfg).await;
    let seen = dir.path().join("seen");
    with_hooks(
        &cfg,
        &format!(
            "after_test_traffic = \"echo $TEAL_HOOK $TEAL_GREEN_WEIGHT >> {0}\"\nbefore_traffic = \"echo $TEAL_HOOK >> {0}\"",
            seen.display()
        ),
    );
    let (stdout, _) = deploy_app_2(&m, &cfg, &["--output", "json"], 0).await;
    ecs.abort();
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or(""))
        .filter(|k| ["test_weights_set", "hook_started", "weights_set"].contains(k))
        .collect();
    assert_eq!(
        &kinds[..4],
        [
            "test_weights_set",
            "hook_started",
            "hook_started",
            "weights_set"
        ],
        "test listener, its hook, before-traffic, then production: {kinds:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "after-test-traffic 0\nbefore-traffic\n"
    );
    assert_eq!(
        listener_weights(&c, &test).await,
        (0, 100),
        "left on green, now live"
    );
    assert_eq!(weights(&c, &f).await, (0, 100));

    // Failing: the test listener goes back to blue before green is removed.
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (_dir, cfg) = config(&f, FAST_CANARY);
    let test = add_test_listener(&c, &f, &cfg).await;
    with_hooks(
        &cfg,
        "after_test_traffic = \"echo 'GET /checkout: 500' >&2; exit 2\"",
    );
    let (stdout, _) = deploy_app_2(&m, &cfg, &[], 3).await;
    ecs.abort();
    assert!(
        stdout.contains("the after-test-traffic hook failed"),
        "{stdout}"
    );
    assert!(stdout.contains("GET /checkout: 500"), "{stdout}");
    assert!(
        !stdout.contains("weights now"),
        "production never moved:\n{stdout}"
    );
    assert_eq!(listener_weights(&c, &test).await, (100, 0));
    assert_eq!(weights(&c, &f).await, (100, 0));
    assert_eq!(active_services(&c, &f).await, vec![f.name.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_test_listener_it_cannot_read() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let (_dir, cfg) = config(&f, FAST_CANARY);
    let real = add_test_listener(&c, &f, &cfg).await;
    let (base, _) = real.rsplit_once('/').unwrap();
    let gone = format!("{base}/0123456789abcdef");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(&real, &gone);
    std::fs::write(&cfg, text).unwrap();
    let (_, stderr) = app_2(&m, "verify", &cfg, &[], 2).await;
    assert!(
        stderr.contains(&format!("router.test_listener_arn: {gone} cannot be read")),
        "{stderr}"
    );
}

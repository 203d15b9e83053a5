//! Tier 3: lifecycle hooks against moto with the real SDK. The hooks are
//! real child processes; what they were told comes back through a file.

#[path = "support/aws.rs"]
mod support;

use std::io::Write as _;
use support::*;

/// Append a `[hooks]` section to a config.
fn with_hooks(cfg: &std::path::Path, hooks: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(cfg).unwrap();
    writeln!(f, "\n[hooks]\n{hooks}").unwrap();
}

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
    let log = dir.path().join("log");
    let line = format!(
        "echo \"$TEAL_HOOK $TEAL_STEP/$TEAL_STEPS $TEAL_GREEN_WEIGHT\" >> {}",
        log.display()
    );
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

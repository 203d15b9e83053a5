//! Tier 3: `teal deploy` on ECS behind a Network Load Balancer's TCP
//! listener (`router.kind = "nlb"`), against moto in server mode with the
//! real SDK.
//!
//! What moto does not model here: it keeps an NLB listener's weighted
//! forward as written, but never checks that the listener's protocol fits
//! its target groups' (AWS refuses a UDP target group behind a TCP listener),
//! routes no connections, and names an NLB's listeners `listener/app/...`
//! where AWS writes `listener/net/...` (so teal tells the two kinds apart by
//! the listener's protocol, never by the ARN).

#[path = "support/aws.rs"]
mod support;

use aws_sdk_cloudwatch::types::StateValue;
use aws_sdk_elasticloadbalancingv2::types::ProtocolEnum;
use support::*;

fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_on_an_nlb_listener_succeeds_and_an_alarm_rolls_it_back() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;

    // Success: a plain forward to slot A becomes a weighted one, ends on B.
    let f = nlb_fixture(&c, ProtocolEnum::Tcp).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (_dir, cfg) = config(&f, FAST_CANARY);
    let (stdout, _) = run_teal(
        &m,
        &[
            "deploy",
            "--config",
            cfg.to_str().unwrap(),
            "--image",
            "registry.example/app:2",
            "--output",
            "json",
        ],
        0,
    )
    .await;
    ecs.abort();
    let set: Vec<u64> = events(&stdout)
        .iter()
        .filter(|e| e["event"] == "weights_set")
        .map(|e| e["weights"]["green"].as_u64().unwrap())
        .collect();
    assert_eq!(set, vec![50, 100], "{stdout}");
    assert_eq!(weights(&c, &f).await, (0, 100), "the listener read back");
    assert_eq!(active_services(&c, &f).await, vec![format!("{}-b", f.name)]);

    // Rollback: an alarm in the bake puts every new connection back on blue.
    let f = nlb_fixture(&c, ProtocolEnum::Tcp).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let strategy = r#"canary = { percent = 25, bake = "60s" }
keep_alive = "2s"
poll = "1s"
green_healthy_timeout = "30s""#;
    let (_dir, cfg) = config(&f, strategy);
    let child = teal(
        &m,
        &[
            "deploy",
            "--config",
            cfg.to_str().unwrap(),
            "--image",
            "registry.example/app:2",
            "--output",
            "json",
        ],
    )
    .spawn()
    .unwrap();
    wait_for_weights(&c, &f, (75, 25)).await;
    set_alarm(&c, &f.alarms[0], StateValue::Alarm).await;
    wait_for_weights(&c, &f, (100, 0)).await;
    let out = child.wait_with_output().await.unwrap();
    ecs.abort();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let finished = events(&stdout)
        .into_iter()
        .find(|e| e["event"] == "finished")
        .unwrap();
    assert_eq!(finished["outcome"]["reason"]["gate"], f.alarms[0]);
    assert_eq!(weights(&c, &f).await, (100, 0));
    assert_eq!(active_services(&c, &f).await, vec![f.name.clone()]);
}

/// `teal deploy` of `f` with `edit` applied to its config: exit 2, nothing
/// written; its stderr.
async fn refused(m: &Moto, f: &Fixture, edit: impl Fn(String) -> String) -> String {
    let (_dir, cfg) = config(f, FAST_CANARY);
    let text_in = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, edit(text_in)).unwrap();
    let (stdout, stderr) = run_teal(
        m,
        &[
            "deploy",
            "--config",
            cfg.to_str().unwrap(),
            "--image",
            "registry.example/app:2",
        ],
        2,
    )
    .await;
    assert_eq!(mutating_calls(&stdout), Vec::<String>::new(), "{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nlb_router_refuses_what_an_nlb_cannot_do_before_any_write() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;

    // Slot B speaks UDP behind a TCP listener: AWS would refuse the forward.
    let f = nlb_fixture(&c, ProtocolEnum::Udp).await;
    let stderr = refused(&m, &f, |t| t).await;
    assert!(
        stderr.contains("router.target_groups[1]") && stderr.contains("speaks UDP"),
        "{stderr}"
    );
    assert_eq!(active_services(&c, &f).await, vec![f.name.clone()]);
    assert_eq!(weights(&c, &f).await, (100, 0));

    // An ALB's listener under kind = "nlb", and an NLB's under "alb": exit 2,
    // naming the field and the kind to use.
    let alb = fixture(&c, Forward::Weighted).await;
    let stderr = refused(&m, &alb, |t| t.replace("kind = \"alb\"", "kind = \"nlb\"")).await;
    assert!(
        stderr.contains("router.listener_arn") && stderr.contains("use kind = \"alb\""),
        "{stderr}"
    );
    let f = nlb_fixture(&c, ProtocolEnum::Tcp).await;
    let stderr = refused(&m, &f, |t| t.replace("kind = \"nlb\"", "kind = \"alb\"")).await;
    assert!(
        stderr.contains("router.target_groups[0]") && stderr.contains("use kind = \"nlb\""),
        "{stderr}"
    );
}

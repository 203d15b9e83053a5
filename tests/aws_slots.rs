//! Tier 3: slots that live in IaC (`fleet.slots = "existing"`), against moto
//! in server mode with the real SDK: both slots' services (or groups) exist
//! beforehand, as Terraform declares them, and teal only updates and scales
//! them. The set of services or groups is the same before and after every
//! deployment, whether it succeeds or rolls back.
//!
//! What moto does not model here: Application Auto Scaling and Auto Scaling
//! policies never act (so a fight between a scalable target's minimum and a
//! parked slot would not show; the bounds teal writes are read back
//! instead), and ECS starts no tasks (the tests register targets in ECS's
//! place, as the other ECS tests do).

#[path = "support/aws.rs"]
mod support;

use aws_sdk_cloudwatch::types::StateValue;
use std::collections::BTreeSet;
use support::*;

/// The fixture's config with existing slots.
fn existing_config(f: &Fixture, strategy: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, cfg) = config(f, strategy);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "container_port = 8080\n",
        "container_port = 8080\nslots = \"existing\"\n",
    );
    assert!(text.contains("slots = \"existing\""));
    std::fs::write(&cfg, text).unwrap();
    (dir, cfg)
}

fn deploy_args<'a>(cfg: &'a std::path::Path, image: &'a str) -> Vec<&'a str> {
    vec![
        "deploy",
        "--config",
        cfg.to_str().unwrap(),
        "--image",
        image,
        "--output",
        "json",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_existing_slots_are_updated_and_scaled_never_created_or_deleted() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = existing_slots_fixture(&c).await;
    let (a, b) = (format!("{}-a", f.name), format!("{}-b", f.name));
    let names = |s: &std::collections::BTreeMap<String, (i32, String)>| {
        s.keys().cloned().collect::<BTreeSet<_>>()
    };
    let before = services_now(&c, &f).await;
    assert_eq!(names(&before), [a.clone(), b.clone()].into());
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (_dir, cfg) = existing_config(&f, FAST_CANARY);

    // v2 goes to the parked slot B at blue's size; A is parked after.
    let (stdout, _) = run_teal(&m, &deploy_args(&cfg, "registry.example/app:2"), 0).await;
    assert_eq!(
        mutating_ops(&stdout, &["CreateService", "DeleteService"]),
        0
    );
    let now = services_now(&c, &f).await;
    assert_eq!(names(&now), names(&before), "nothing created or deleted");
    assert_eq!(
        (now[&a].0, now[&b].0),
        (0, 2),
        "A parked, B at blue's count"
    );
    assert_eq!(
        green_images(&c, &f).await,
        vec![("app".to_string(), "registry.example/app:2".to_string())]
    );
    assert_eq!(weights(&c, &f).await, (0, 100));
    // Blue's bounds went to green; the parked slot cannot be scaled back up.
    assert_eq!(scaling_bounds(&c, &f, &b).await, Some((2, 6)));
    assert_eq!(scaling_bounds(&c, &f, &a).await, Some((0, 0)));

    // v3 goes back to A, the slot just parked.
    let (_stdout, _) = run_teal(&m, &deploy_args(&cfg, "registry.example/app:3"), 0).await;
    let now = services_now(&c, &f).await;
    assert_eq!(names(&now), names(&before));
    assert_eq!((now[&a].0, now[&b].0), (2, 0));
    assert_ne!(now[&a].1, before[&a].1, "A runs a new task definition");
    assert_eq!(weights(&c, &f).await, (100, 0));
    assert_eq!(scaling_bounds(&c, &f, &a).await, Some((2, 6)));
    assert_eq!(scaling_bounds(&c, &f, &b).await, Some((0, 0)));

    // v4 rolls back on an alarm: green (B) is parked again, A untouched.
    let strategy = r#"canary = { percent = 25, bake = "60s" }
keep_alive = "2s"
poll = "1s"
green_healthy_timeout = "30s""#;
    let (_dir2, cfg) = existing_config(&f, strategy);
    let child = teal(&m, &deploy_args(&cfg, "registry.example/app:4"))
        .spawn()
        .unwrap();
    wait_for_weights(&c, &f, (75, 25)).await;
    set_alarm(&c, &f.alarms[0], StateValue::Alarm).await;
    wait_for_weights(&c, &f, (100, 0)).await;
    let out = child.wait_with_output().await.unwrap();
    ecs.abort();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert_eq!(
        mutating_ops(&stdout, &["CreateService", "DeleteService"]),
        0
    );
    let after = services_now(&c, &f).await;
    assert_eq!(names(&after), names(&before));
    assert_eq!(
        (after[&a].0, after[&b].0),
        (2, 0),
        "green parked, blue kept"
    );
    assert_eq!(after[&a].1, now[&a].1, "blue still runs v3");
    assert_eq!(scaling_bounds(&c, &f, &b).await, Some((0, 0)));
    assert_eq!(scaling_bounds(&c, &f, &a).await, Some((2, 6)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_slots_that_do_not_exist_are_refused_before_any_write() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    // teal's default fixture: one service, NAME, and no NAME-a / NAME-b.
    let f = fixture(&c, Forward::Weighted).await;
    let (_dir, cfg) = existing_config(&f, FAST_CANARY);
    let args = [
        "deploy",
        "--config",
        cfg.to_str().unwrap(),
        "--image",
        "registry.example/app:2",
    ];
    let (stdout, stderr) = run_teal(&m, &args, 2).await;
    assert!(
        stderr.contains(&format!("no active ECS service \"{}-a\"", f.name))
            && stderr.contains(&format!("\"{}-b\"", f.name)),
        "{stderr}"
    );
    assert_eq!(mutating_calls(&stdout), Vec::<String>::new());
    assert_eq!(active_services(&c, &f).await, vec![f.name.clone()]);

    // Both slots exist but both are parked: no blue to copy.
    let f = existing_slots_fixture(&c).await;
    c.ecs
        .update_service()
        .cluster(&f.cluster)
        .service(format!("{}-a", f.name))
        .desired_count(0)
        .send()
        .await
        .unwrap();
    let (_dir, cfg) = existing_config(&f, FAST_CANARY);
    let args = [
        "deploy",
        "--config",
        cfg.to_str().unwrap(),
        "--image",
        "registry.example/app:2",
    ];
    let (stdout, stderr) = run_teal(&m, &args, 2).await;
    assert!(stderr.contains("are parked at 0 tasks"), "{stderr}");
    assert_eq!(mutating_calls(&stdout), Vec::<String>::new());
}

/// How many calls of `ops` the run's `api_calls` line counts (asserting
/// that the slot services were updated, so that the count means something).
fn mutating_ops(stdout: &str, ops: &[&str]) -> u64 {
    let calls = api_calls_line(stdout);
    assert!(
        calls["calls"]["UpdateService"].as_u64().unwrap_or(0) >= 2,
        "{calls}"
    );
    ops.iter()
        .map(|op| calls["calls"][op].as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asg_existing_slots_are_updated_and_scaled_never_created_or_deleted() {
    let Some(m) = moto() else { return };
    let f = asg_existing_fixture(&m).await;
    let (a, b) = (format!("{}-a", f.name), format!("{}-b", f.name));
    let strategy = r#"linear = { step = 50, interval = "2s" }
keep_alive = "2s"
poll = "1s"
green_healthy_timeout = "30s""#;
    let (_dir, cfg) = asg_config(&f, strategy);
    let toml = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("group = \"{}\"\n", f.name),
        &format!("group = \"{}\"\nslots = \"existing\"\n", f.name),
    );
    assert!(toml.contains("slots = \"existing\""));
    std::fs::write(&cfg, &toml).unwrap();
    let before = group_sizes(&m, &f).await;
    let names =
        |g: &std::collections::BTreeMap<String, _>| g.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(names(&before), [a.clone(), b.clone()].into());
    let args = [
        "deploy",
        "--config",
        cfg.to_str().unwrap(),
        "--ami",
        AMI_GREEN,
        "--output",
        "json",
    ];

    let (stdout, _) = run_teal(&m, &args, 0).await;
    let calls = api_calls_line(&stdout);
    for op in [
        "CreateAutoScalingGroup",
        "DeleteAutoScalingGroup",
        "DetachLoadBalancerTargetGroups",
    ] {
        assert_eq!(calls["calls"][op], serde_json::Value::Null, "{op}: {calls}");
    }
    assert!(
        calls["calls"]["UpdateAutoScalingGroup"].as_u64() >= Some(2),
        "{calls}"
    );
    let now = group_sizes(&m, &f).await;
    assert_eq!(names(&now), names(&before), "nothing created or deleted");
    assert_eq!(now[&b].0, (1, 4, 2), "green: blue's bounds and size");
    assert_eq!(now[&a].0, (0, 0, 0), "blue parked");
    assert_ne!(now[&b].1, before[&b].1, "green runs a new template version");
    assert_eq!(record_weights(&m, &f).await, (0, 255));

    // An alarm before the first step is baked: green (A now) parked again.
    let c = clients(&m).await;
    let slow = r#"linear = { step = 50, interval = "60s" }
keep_alive = "2s"
poll = "1s"
green_healthy_timeout = "30s""#;
    std::fs::write(&cfg, toml.replace(strategy, slow)).unwrap();
    let child = teal(&m, &args).spawn().unwrap();
    let t0 = std::time::Instant::now();
    while record_weights(&m, &f).await.0 == 0 {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "never shifted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    set_alarm(&c, &f.alarms[0], StateValue::Alarm).await;
    let out = child.wait_with_output().await.unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let after = group_sizes(&m, &f).await;
    assert_eq!(names(&after), names(&before));
    assert_eq!(after[&a].0, (0, 0, 0), "green parked again");
    assert_eq!(after[&b].0, (1, 4, 2), "blue kept");
    assert_eq!(record_weights(&m, &f).await, (0, 255));
}

//! The least-privilege IAM policies in `examples/codepipeline/` against the
//! calls teal really makes: every AWS operation of a deployment (success,
//! rollback on an alarm, listener rule, rolling updates; ECS + ALB and Auto
//! Scaling + Route 53)
//! against moto must be
//! an action the policy allows, and the policy must allow nothing else but
//! the few actions AWS checks without teal calling them (listed below, each
//! with its reason).

#[path = "support/aws.rs"]
mod support;

use aws_sdk_cloudwatch::types::StateValue;
use std::collections::BTreeSet;
use support::*;

/// Actions allowed beyond the calls these flows make: AWS authorises the
/// first ones on teal's behalf without an API call of that name; the last
/// ones teal calls on paths these flows do not reach.
const IMPLIED: [(&str, &str); 4] = [
    (
        "iam:PassRole",
        "green's task definition (or launch template) carries blue's roles",
    ),
    (
        "ecs:TagResource",
        "CreateService and RegisterTaskDefinition with tags (rolling updates also call it)",
    ),
    (
        "ec2:RunInstances",
        "CreateAutoScalingGroup with a launch template checks it",
    ),
    (
        "route53:GetChange",
        "asked only while a record change is PENDING; moto applies changes at once",
    ),
];

/// Operations AWS answers without any policy: "No permissions are required
/// to perform this operation" (STS API reference, GetCallerIdentity). teal
/// asks it once per operator command, to record who sent it.
const NO_PERMISSION: [&str; 1] = ["GetCallerIdentity"];

/// The policy's actions, e.g. `elasticloadbalancing:ModifyListener`.
fn actions(file: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = BTreeSet::new();
    for st in doc["Statement"].as_array().unwrap() {
        assert_eq!(st["Effect"], "Allow", "{file}: allow statements only");
        match &st["Action"] {
            serde_json::Value::String(a) => {
                out.insert(a.clone());
            }
            serde_json::Value::Array(list) => {
                out.extend(list.iter().map(|a| a.as_str().unwrap().to_string()))
            }
            other => panic!("{file}: Action {other}"),
        }
    }
    assert!(
        out.iter().all(|a| !a.contains('*')),
        "{file}: no wildcard actions"
    );
    out
}

/// The operations a run reported in its `api_calls` line: those AWS
/// accepted and those it rejected (a conditional write that lost still
/// needs the permission to try).
fn calls(stdout: &str) -> BTreeSet<String> {
    let line = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "api_calls")
        .unwrap_or_else(|| panic!("no api_calls line in:\n{stdout}"));
    let accepted = line["calls"].as_object().unwrap().keys().cloned();
    let rejected = line["rejected"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.split(':').next().unwrap().to_string());
    accepted.chain(rejected).collect()
}

/// Every call is allowed (by operation name: the policy is per provider pair,
/// so a name maps to one service), and every allowed action is called or implied.
fn assert_least_privilege(file: &str, called: &BTreeSet<String>) {
    let policy = actions(file);
    let op = |a: &String| a.split_once(':').unwrap().1.to_string();
    let missing: Vec<&String> = called
        .iter()
        .filter(|c| !NO_PERMISSION.contains(&c.as_str()))
        .filter(|c| !policy.iter().any(|a| op(a) == **c))
        .collect();
    assert!(
        missing.is_empty(),
        "{file} lacks actions teal calls: {missing:?}"
    );
    let implied: BTreeSet<&str> = IMPLIED.iter().map(|(a, _)| *a).collect();
    let unused: Vec<&String> = policy
        .iter()
        .filter(|a| !called.contains(&op(a)) && !implied.contains(a.as_str()))
        .collect();
    assert!(
        unused.is_empty(),
        "{file} allows actions teal never calls: {unused:?}"
    );
}

/// Append canary analysis on `preset` (1 s periods, so a short bake is judged).
fn with_analysis(cfg: &std::path::Path, preset: &str) {
    let mut text = std::fs::read_to_string(cfg).unwrap();
    text.push_str(&format!(
        "\n[analysis]\nperiod = \"1s\"\nlate = \"1s\"\nmin_points = 3\n\n[[analysis.metric]]\npreset = \"{preset}\"\nmax = 100\n"
    ));
    std::fs::write(cfg, text).unwrap();
}

fn json_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend(["--output", "json"]);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ecs_alb_policy_allows_what_teal_calls_and_nothing_more() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let mut called = BTreeSet::new();

    // A canary to the end, judged by canary analysis. (`status` reads with
    // the same operations.)
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (_dir, cfg) = config(&f, FAST_CANARY);
    with_analysis(&cfg, "alb-5xx-share");
    let cfg = cfg.to_str().unwrap();
    let deploy = [
        "deploy",
        "--config",
        cfg,
        "--image",
        "registry.example/app:2",
    ];
    let (out, _) = run_teal(&m, &json_args(&deploy), 0).await;
    called.extend(calls(&out));

    // A rollback on an alarm mid-bake.
    let slow = FAST_CANARY.replace("bake = \"3s\"", "bake = \"60s\"");
    let (_dir2, cfg2) = config(&f, &slow);
    let cfg2 = cfg2.to_str().unwrap();
    let args = [
        "deploy",
        "--config",
        cfg2,
        "--image",
        "registry.example/app:3",
    ];
    let child = teal(&m, &json_args(&args)).spawn().unwrap();
    let canary = wait_for_canary(&c, &f).await;
    set_alarm(&c, &f.alarms[0], StateValue::Alarm).await;
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "rolled back from {canary:?}");
    called.extend(calls(&String::from_utf8_lossy(&out.stdout)));
    set_alarm(&c, &f.alarms[0], StateValue::Ok).await;
    ecs.abort();

    // A listener rule.
    let g = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &g, None);
    let (_dir3, cfg3) = config(&g, FAST_CANARY);
    let text = std::fs::read_to_string(&cfg3).unwrap().replace(
        &format!("listener_arn = \"{}\"", g.listener),
        &format!("rule_arn = \"{}\"", g.rule),
    );
    std::fs::write(&cfg3, text).unwrap();
    let cfg3 = cfg3.to_str().unwrap();
    let deploy = [
        "deploy",
        "--config",
        cfg3,
        "--image",
        "registry.example/app:2",
    ];
    let (out, _) = run_teal(&m, &json_args(&deploy), 0).await;
    called.extend(calls(&out));
    ecs.abort();

    // A rolling update in place, with one target group.
    let h = fixture(&c, Forward::Weighted).await;
    let (_dir4, cfg4) = one_target_group(&h, FAST_ROLLING);
    let cfg4 = cfg4.to_str().unwrap();
    let deploy = [
        "deploy",
        "--config",
        cfg4,
        "--image",
        "registry.example/app:2",
    ];
    let (out, _) = run_teal(&m, &json_args(&deploy), 0).await;
    called.extend(calls(&out));

    eprintln!("ECS + ALB: {} operations: {called:?}", called.len());
    assert_least_privilege("examples/codepipeline/iam-ecs-alb.json", &called);
}

/// Wait until the listener gives green (slot a, after the first deployment
/// moved blue to slot b) some traffic; the weights it read.
async fn wait_for_canary(c: &Clients, f: &Fixture) -> (i32, i32) {
    let t0 = std::time::Instant::now();
    loop {
        let w = weights(c, f).await;
        if w.0 > 0 && w.1 > 0 {
            return w;
        }
        assert!(t0.elapsed().as_secs() < 60, "no canary within a minute");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asg_route53_policy_allows_what_teal_calls_and_nothing_more() {
    let Some(m) = moto() else { return };
    let f = asg_fixture(&m).await;
    let (_dir, cfg) = asg_config(&f, FAST_CANARY);
    with_analysis(&cfg, "ec2-cpu");
    let cfg = cfg.to_str().unwrap();
    let mut called = BTreeSet::new();
    let deploy = ["deploy", "--config", cfg, "--ami", AMI_GREEN];
    let (out, _) = run_teal(&m, &json_args(&deploy), 0).await;
    called.extend(calls(&out));

    // Rolling updates in place (an instance refresh, through the stand-in
    // moto lacks): to a new AMI, then back to a given version, and one
    // rolled back on an alarm.
    let r = asg_fixture(&m).await;
    let rolling = r#"rolling = { min_healthy_percent = 50, max_percent = 150, step = 50, bake = "1s" }
poll = "1s""#;
    let (_dir2, cfg2) = asg_config(&r, rolling);
    let cfg2 = cfg2.to_str().unwrap();
    let (_, proxy) = refresh_stand_in(&m, false).await;
    for green in [["--ami", AMI_GREEN], ["--launch-template-version", "1"]] {
        let deploy = ["deploy", "--config", cfg2, green[0], green[1]];
        let (out, _) = run_teal_via(&m, &proxy, &json_args(&deploy), 0).await;
        called.extend(calls(&out));
    }
    let (service, proxy) = refresh_stand_in(&m, true).await;
    let deploy = ["deploy", "--config", cfg2, "--ami", AMI_BLUE];
    let child = teal_via(&m, &proxy, &json_args(&deploy)).spawn().unwrap();
    wait_for_refresh(&service, "InProgress").await;
    set_alarm(&clients(&m).await, &r.alarms[0], StateValue::Alarm).await;
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out).0);
    called.extend(calls(&String::from_utf8_lossy(&out.stdout)));

    eprintln!(
        "Auto Scaling + Route 53: {} operations: {called:?}",
        called.len()
    );
    assert_least_privilege("examples/codepipeline/iam-asg-route53.json", &called);
}

/// `[notify]` adds `examples/codepipeline/iam-notify.json` to a pipeline
/// role's policy, and only then: its actions are exactly what a deployment
/// that notifies an SNS topic and an EventBridge bus calls beyond the
/// provider's own policy (the ECS + ALB test above shows a deployment
/// without `[notify]` calls neither). `teal approve` adds GetCallerIdentity,
/// which needs no permission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notify_policy_allows_what_notifications_call_and_nothing_more() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let sdk = sdk(&m).await;
    let topic = aws_sdk_sns::Client::new(&sdk)
        .create_topic()
        .name(unique("teal-iam-"))
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .unwrap()
        .to_string();
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let approving = FAST_CANARY.replace("bake = \"3s\"", "bake = \"1s\", approve = true");
    let (_dir, cfg) = config(&f, &approving);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[[notify.sns]]\ntopic_arn = \"{topic}\"\n\n[[notify.eventbridge]]\n"
    ));
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.to_str().unwrap();
    let deploy = [
        "deploy",
        "--config",
        cfg,
        "--image",
        "registry.example/app:2",
    ];
    let child = teal(&m, &json_args(&deploy)).spawn().unwrap();
    let mut called = BTreeSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (out, _) = run_teal(&m, &["status", "--config", cfg, "--output", "json"], 0).await;
        if out.contains("\"hold\":\"approval\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no approval wait: {out}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let (out, _) = run_teal(&m, &json_args(&["approve", "--config", cfg]), 0).await;
    called.extend(calls(&out));
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    called.extend(calls(&String::from_utf8_lossy(&out.stdout)));
    ecs.abort();

    let op = |a: &String| a.split_once(':').unwrap().1.to_string();
    let base: BTreeSet<String> = actions("examples/codepipeline/iam-ecs-alb.json")
        .iter()
        .map(op)
        .collect();
    let beyond: BTreeSet<String> = called
        .iter()
        .filter(|c| !base.contains(*c) && !NO_PERMISSION.contains(&c.as_str()))
        .cloned()
        .collect();
    let notify: BTreeSet<String> = actions("examples/codepipeline/iam-notify.json")
        .iter()
        .map(op)
        .collect();
    assert_eq!(beyond, notify, "called: {called:?}");
    assert!(called.contains("GetCallerIdentity"), "{called:?}");
}

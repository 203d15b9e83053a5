//! Tier 3: `teal init` against moto in server mode with the real SDK: from
//! an ECS service and from an Auto Scaling group, it writes a config that
//! `teal verify` accepts and a deployment succeeds from; it changes nothing
//! in the account (checked against moto's state) unless asked to create slot
//! B's target group, and refuses to overwrite a file without `--force`.
//!
//! What moto does not model: a target group named only in a weighted
//! forward lists no load balancer in moto's `DescribeTargetGroups` (AWS
//! lists it), so init from a group or service after a first deployment is
//! not tried here; init from the listener is, and takes the listener's own.

#[path = "support/aws.rs"]
mod support;

use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};
use support::*;

/// A metric alarm with one dimension.
async fn alarm_on(c: &Clients, name: &str, dimension: &str, value: &str) {
    put_alarm_on(c, name, Some((dimension, value))).await
}

/// The ARN's resource part after its type: `targetgroup/N/ID` → as
/// CloudWatch's dimension spells it.
fn suffix(arn: &str) -> String {
    arn.splitn(6, ':').nth(5).unwrap().to_string()
}

/// Everything `init` could have changed: target groups, listeners' actions,
/// the ledger table's items.
async fn account_state(c: &Clients) -> String {
    let tgs = c.elb.describe_target_groups().send().await.unwrap();
    let mut out: Vec<String> = tgs
        .target_groups()
        .iter()
        .map(|t| t.target_group_arn().unwrap().to_string())
        .collect();
    let lbs = c.elb.describe_load_balancers().send().await.unwrap();
    for lb in lbs.load_balancers() {
        let ls = c
            .elb
            .describe_listeners()
            .load_balancer_arn(lb.load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        for l in ls.listeners() {
            out.push(format!("{:?}", l.default_actions()));
        }
    }
    out.sort();
    out.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_from_an_ecs_service_writes_a_config_that_deploys() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Plain).await;
    let lb = c
        .elb
        .describe_target_groups()
        .target_group_arns(&f.tg_a)
        .send()
        .await
        .unwrap()
        .target_groups()[0]
        .load_balancer_arns()[0]
        .clone();
    let lb_dim = suffix(&lb).trim_start_matches("loadbalancer/").to_string();
    let (on_lb, on_tg) = (format!("{}-lb-5xx", f.name), format!("{}-tg-5xx", f.name));
    alarm_on(&c, &on_lb, "LoadBalancer", &lb_dim).await;
    alarm_on(&c, &on_tg, "TargetGroup", &suffix(&f.tg_a)).await;
    alarm_on(
        &c,
        &format!("{}-elsewhere", f.name),
        "LoadBalancer",
        "app/other/1",
    )
    .await;
    let before = account_state(&c).await;

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("teal.toml");
    let cfg_s = cfg.to_str().unwrap();
    let init = [
        "init",
        "--config",
        cfg_s,
        "--cluster",
        &f.cluster,
        "--service",
        &f.name,
    ];
    let (stdout, _) = run_teal(&m, &init, 0).await;
    assert!(stdout.contains(&format!("wrote {cfg_s}")), "{stdout}");
    assert!(!stdout.contains("missing:"), "{stdout}");
    assert_eq!(account_state(&c).await, before, "init changed nothing");
    let text = std::fs::read_to_string(&cfg).unwrap();
    for want in [
        format!("listener_arn = {:?}", f.listener),
        format!("{:?},   # slot A", f.tg_a),
        format!("{:?},   # slot B", f.tg_b),
        format!("alarms = [{on_lb:?}, {on_tg:?}]"),
        "container = \"app\"".to_string(),
        "container_port = 8080".to_string(),
    ] {
        assert!(text.contains(&want), "{want} in:\n{text}");
    }
    // A second init does not overwrite it.
    let (_, stderr) = run_teal(&m, &init, 2).await;
    assert!(stderr.contains("--force"), "{stderr}");
    // A service that is not there: exit 2, naming it, no file.
    let nope = dir.path().join("nope.toml");
    let (_, stderr) = run_teal(
        &m,
        &[
            "init",
            "--config",
            nope.to_str().unwrap(),
            "--cluster",
            &f.cluster,
            "--service",
            "nope",
        ],
        2,
    )
    .await;
    assert!(
        stderr.contains("no active ECS service \"nope\""),
        "{stderr}"
    );
    assert!(!nope.exists());

    let image = ["--image", "registry.example/app:2"];
    run_teal(
        &m,
        &[&["verify", "--config", cfg_s][..], &image].concat(),
        0,
    )
    .await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let fast = text
        .replace("name = \"canary-10-5m\"", FAST_CANARY)
        .replace("keep_alive = \"15m\"\n", "");
    std::fs::write(&cfg, fast).unwrap();
    let (stdout, _) = run_teal(
        &m,
        &[&["deploy", "--config", cfg_s][..], &image].concat(),
        0,
    )
    .await;
    ecs.abort();
    assert!(stdout.contains("outcome: Succeeded"), "{stdout}");
    assert_eq!(weights(&c, &f).await, (0, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_from_an_auto_scaling_group_says_what_is_missing_and_creates_it_when_asked() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk(&m).await);
    let name = unique("i");
    let (vpc, subnets) = default_network(&c).await;
    let lb = c
        .elb
        .create_load_balancer()
        .name(&name)
        .set_subnets(Some(subnets.clone()))
        .send()
        .await
        .unwrap();
    let lb = lb.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let live = format!("{name}-live");
    let tg = create_target_group(
        &c,
        &live,
        &vpc,
        80,
        aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance,
    )
    .await;
    let listener = c
        .elb
        .create_listener()
        .load_balancer_arn(&lb)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&tg)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let listener = listener.listeners()[0].listener_arn().unwrap().to_string();
    let template = launch_template(&c, &name).await;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&name)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_id(&template)
                .version("1")
                .build(),
        )
        .min_size(1)
        .max_size(4)
        .desired_capacity(2)
        .vpc_zone_identifier(subnets.join(","))
        .target_group_arns(&tg)
        .send()
        .await
        .unwrap();
    let alarm = format!("{name}-group-cpu");
    alarm_on(&c, &alarm, "AutoScalingGroupName", &name).await;
    let before = account_state(&c).await;

    // Slot B is missing: said, with how to add it; nothing created.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("teal.toml");
    let cfg_s = cfg.to_str().unwrap();
    let (stdout, _) = run_teal(&m, &["init", "--config", cfg_s, "--group", &name], 0).await;
    let slot_b = format!("{live}-b");
    assert!(
        stdout.contains(&format!(
            "missing: slot B's target group: create \"{slot_b}\""
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("AWS::ElasticLoadBalancingV2::TargetGroup"),
        "{stdout}"
    );
    assert!(
        stdout.contains("resource \"aws_lb_target_group\" \"slot_b\""),
        "{stdout}"
    );
    assert_eq!(account_state(&c).await, before, "init changed nothing");
    let (_, stderr) = run_teal(&m, &["plan", "--config", cfg_s], 2).await;
    assert!(
        stderr.contains("only a rolling strategy is possible"),
        "{stderr}"
    );

    // Asked to, it creates slot B's as a copy of blue's: then all is there.
    let (stdout, _) = run_teal(
        &m,
        &[
            "init",
            "--config",
            cfg_s,
            "--group",
            &name,
            "--force",
            "--create-target-group",
        ],
        0,
    )
    .await;
    assert!(!stdout.contains("missing:"), "{stdout}");
    let created = c
        .elb
        .describe_target_groups()
        .names(&slot_b)
        .send()
        .await
        .expect("slot B's target group exists");
    let b = &created.target_groups()[0];
    assert_eq!(
        (
            b.protocol(),
            b.port(),
            b.vpc_id(),
            b.target_type().map(|t| t.as_str())
        ),
        (
            Some(&ProtocolEnum::Http),
            Some(80),
            Some(vpc.as_str()),
            Some("instance")
        )
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    for want in [
        format!("group = {name:?}"),
        format!("listener_arn = {listener:?}"),
        format!("{:?},   # slot B", b.target_group_arn().unwrap()),
        format!("alarms = [{alarm:?}]"),
    ] {
        assert!(text.contains(&want), "{want} in:\n{text}");
    }
    let ami = ["--ami", AMI_GREEN];
    run_teal(&m, &[&["verify", "--config", cfg_s][..], &ami].concat(), 0).await;
    let fast = text.replace(
        "name = \"canary-10-5m\"",
        "linear = { step = 50, interval = \"2s\" }\npoll = \"1s\"\ngreen_healthy_timeout = \"30s\"",
    );
    std::fs::write(
        &cfg,
        fast.replace("keep_alive = \"15m\"", "keep_alive = \"2s\""),
    )
    .unwrap();
    let (stdout, _) = run_teal(&m, &[&["deploy", "--config", cfg_s][..], &ami].concat(), 0).await;
    assert!(stdout.contains("outcome: Succeeded"), "{stdout}");

    // From the listener: the group in the target group it forwards to.
    let other = dir.path().join("from-listener.toml");
    let other_s = other.to_str().unwrap();
    run_teal(
        &m,
        &["init", "--config", other_s, "--listener", &listener],
        0,
    )
    .await;
    let text = std::fs::read_to_string(&other).unwrap();
    assert!(text.contains(&format!("group = {name:?}")), "{text}");
}

#[test]
fn init_needs_a_place_to_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_teal"))
        .args(["init", "--config", "/nonexistent/dir/teal.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--cluster C --service S, --group G, or --listener ARN"),
        "{stderr}"
    );
}

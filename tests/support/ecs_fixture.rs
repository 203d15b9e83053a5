//! An ECS service as blue behind an ALB listener (and a rule), the stand-in
//! that registers its tasks as targets, what the tests read back, and configs.

use super::*;

/// How the listener forwards at the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// A weighted forward, 100 to slot A.
    Weighted,
    /// A plain forward to slot A's target group.
    Plain,
    /// A plain forward to a third target group, not a slot.
    Third,
    /// Load balancer, both slots' target groups and the listener made by the
    /// CloudFormation stack in `examples/codepipeline/prerequisites.yml`.
    Stack,
}

/// One service's worth of AWS resources.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub name: String,
    pub listener: String,
    /// A rule on the listener (`/api/*`) with its own weighted forward, 100/0.
    pub rule: String,
    pub tg_a: String,
    pub tg_b: String,
    pub tg_third: String,
    pub cluster: String,
    pub alarms: Vec<String>,
    /// Behind a Network Load Balancer (`router.kind = "nlb"`).
    pub network: bool,
}

/// Slots that exist beforehand, as Terraform would declare them: services
/// `NAME-a` (blue, two tasks, in slot A's target group) and `NAME-b` (zero
/// tasks, in slot B's), each with a scalable target (A: 2..6, B: 0..0) and
/// a CPU policy, behind the weighted listener, 100/0.
pub async fn existing_slots_fixture(c: &Clients) -> Fixture {
    let name = unique("s");
    let (vpc, subnet_ids) = default_network(c).await;
    let sg = default_security_group(c, &vpc).await;
    let (listener, tgs, alarms) = listener(c, &name, &vpc, &subnet_ids, Forward::Weighted).await;
    for (slot, desired, tg, bounds) in [("a", 2, &tgs[0], (2, 6)), ("b", 0, &tgs[1], (0, 0))] {
        let svc = format!("{name}-{slot}");
        service(c, &name, &svc, desired, subnet_ids.clone(), sg.clone(), tg).await;
        scaling(c, &name, &svc, bounds).await;
    }
    for a in &alarms {
        put_alarm(c, a).await;
    }
    Fixture {
        name: name.clone(),
        listener,
        rule: String::new(),
        tg_a: tgs[0].clone(),
        tg_b: tgs[1].clone(),
        tg_third: tgs[2].clone(),
        cluster: name,
        alarms,
        network: false,
    }
}

/// Each of the fixture's services (blue's name, `-a`, `-b`) that is ACTIVE,
/// with its desired count and task definition.
pub async fn services_now(c: &Clients, f: &Fixture) -> BTreeMap<String, (i32, String)> {
    let names = vec![
        f.name.clone(),
        format!("{}-a", f.name),
        format!("{}-b", f.name),
    ];
    let out = c
        .ecs
        .describe_services()
        .cluster(&f.cluster)
        .set_services(Some(names))
        // moto switches tag output on shared state: ask as teal does, or teal's answers lose their tags.
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .send()
        .await
        .expect("DescribeServices");
    out.services()
        .iter()
        .filter(|s| s.status() == Some("ACTIVE"))
        .map(|s| {
            (
                s.service_name().unwrap_or_default().to_string(),
                (
                    s.desired_count(),
                    s.task_definition().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

/// A service's scalable target bounds (min, max), if it has one.
pub async fn scaling_bounds(c: &Clients, f: &Fixture, service: &str) -> Option<(i32, i32)> {
    use aws_sdk_applicationautoscaling::types::ServiceNamespace;
    let id = format!("service/{}/{service}", f.cluster);
    let out = c
        .scaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&id)
        .send()
        .await
        .expect("DescribeScalableTargets");
    out.scalable_targets()
        .iter()
        .find(|t| t.resource_id() == id)
        .map(|t| (t.min_capacity(), t.max_capacity()))
}

/// Blue behind a Network Load Balancer's TCP listener, forwarding plainly
/// to slot A; the slots' target groups speak TCP, or slot B speaks
/// `slot_b` (to try one an NLB's TCP listener cannot forward to). No rule:
/// an NLB has none.
pub async fn nlb_fixture(c: &Clients, slot_b: ProtocolEnum) -> Fixture {
    let name = unique("n");
    let (vpc, subnet_ids) = default_network(c).await;
    let sg = default_security_group(c, &vpc).await;
    let lb = c
        .elb
        .create_load_balancer()
        .name(&name)
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
        .set_subnets(Some(subnet_ids.clone()))
        .send()
        .await
        .expect("CreateLoadBalancer (network)");
    let lb_arn = lb.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let mut tgs = Vec::new();
    for (suffix, protocol) in [
        ("a", ProtocolEnum::Tcp),
        ("b", slot_b),
        ("x", ProtocolEnum::Tcp),
    ] {
        let tg_name = format!("{name}-{suffix}");
        tgs.push(
            create_target_group_speaking(c, &tg_name, &vpc, 8080, TargetTypeEnum::Ip, protocol)
                .await,
        );
    }
    let listener = c
        .elb
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Tcp)
        .port(443)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&tgs[0])
                .build(),
        )
        .send()
        .await
        .expect("CreateListener (TCP)");
    let listener = listener.listeners()[0].listener_arn().unwrap().to_string();
    blue_service(c, &name, subnet_ids, sg, &tgs[0]).await;
    let alarms = vec![format!("{name}-resets")];
    for a in &alarms {
        put_alarm(c, a).await;
    }
    Fixture {
        name: name.clone(),
        listener,
        rule: String::new(),
        tg_a: tgs[0].clone(),
        tg_b: tgs[1].clone(),
        tg_third: tgs[2].clone(),
        cluster: name,
        alarms,
        network: true,
    }
}

/// Create the prerequisites stack on moto (via boto3, which comes with moto)
/// for service `name`; its outputs.
fn stack_outputs(name: &str) -> serde_json::Value {
    let python =
        std::env::var("TEAL_MOTO_PYTHON").expect("TEAL_MOTO_PYTHON (tests/support/moto-up.sh)");
    let endpoint = std::env::var("TEAL_MOTO_ENDPOINT").expect("TEAL_MOTO_ENDPOINT");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python)
        .arg(root.join("tests/support/cfn_stack.py"))
        .arg(endpoint)
        .arg(root.join("examples/codepipeline/prerequisites.yml"))
        .arg(name)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the stack failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the stack's outputs as JSON")
}

/// A service's worth of resources behind a listener forwarding as `forward`.
pub async fn fixture(c: &Clients, forward: Forward) -> Fixture {
    let name = unique("t");
    let (vpc, subnet_ids) = default_network(c).await;
    let sg = default_security_group(c, &vpc).await;
    let (listener, tgs, alarms) = match forward {
        Forward::Stack => stack_listener(c, &name, &vpc).await,
        _ => listener(c, &name, &vpc, &subnet_ids, forward).await,
    };
    let rule = api_rule(c, &listener, &tgs).await;
    blue_service(c, &name, subnet_ids, sg, &tgs[0]).await;
    blue_scaling(c, &name).await;
    for a in &alarms {
        put_alarm(c, a).await;
    }
    Fixture {
        name: name.clone(),
        listener,
        rule,
        tg_a: tgs[0].clone(),
        tg_b: tgs[1].clone(),
        tg_third: tgs[2].clone(),
        cluster: name,
        alarms,
        network: false,
    }
}

/// The default VPC's default security group.
async fn default_security_group(c: &Clients, vpc: &str) -> String {
    let groups = c
        .ec2
        .describe_security_groups()
        .send()
        .await
        .expect("DescribeSecurityGroups");
    groups
        .security_groups()
        .iter()
        .find(|g| g.vpc_id() == Some(vpc) && g.group_name() == Some("default"))
        .and_then(|g| g.group_id())
        .expect("the default VPC has a default security group")
        .to_string()
}

/// The listener, the slots' target groups and the third one, and the alarm
/// names, from the prerequisites stack.
async fn stack_listener(c: &Clients, name: &str, vpc: &str) -> (String, Vec<String>, Vec<String>) {
    let out = stack_outputs(name);
    let tgs = vec![
        out["TargetGroupA"].as_str().unwrap().to_string(),
        out["TargetGroupB"].as_str().unwrap().to_string(),
        create_target_group(c, &format!("{name}-x"), vpc, 8080, TargetTypeEnum::Ip).await,
    ];
    // moto's CloudFormation has no AWS::CloudWatch::Alarm: made here, as the template names them.
    let alarms = vec![format!("{name}-5xx"), format!("{name}-p99-latency")];
    (
        out["ListenerArn"].as_str().unwrap().to_string(),
        tgs,
        alarms,
    )
}

/// A load balancer with three target groups (a, b, x) and a listener
/// forwarding as `forward`; with the alarm names.
async fn listener(
    c: &Clients,
    name: &str,
    vpc: &str,
    subnet_ids: &[String],
    forward: Forward,
) -> (String, Vec<String>, Vec<String>) {
    let lb = c
        .elb
        .create_load_balancer()
        .name(name)
        .set_subnets(Some(subnet_ids.to_vec()))
        .send()
        .await
        .expect("CreateLoadBalancer");
    let lb_arn = lb.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let mut tgs = Vec::new();
    for suffix in ["a", "b", "x"] {
        let tg_name = format!("{name}-{suffix}");
        tgs.push(create_target_group(c, &tg_name, vpc, 8080, TargetTypeEnum::Ip).await);
    }
    let action = match forward {
        Forward::Weighted => Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(&tgs[0])
                            .weight(100)
                            .build(),
                    )
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(&tgs[1])
                            .weight(0)
                            .build(),
                    )
                    .target_group_stickiness_config(
                        aws_sdk_elasticloadbalancingv2::types::TargetGroupStickinessConfig::builder()
                            .enabled(true)
                            .duration_seconds(300)
                            .build(),
                    )
                    .build(),
            )
            .build(),
        Forward::Plain => Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(&tgs[0])
            .build(),
        Forward::Third => Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(&tgs[2])
            .build(),
        Forward::Stack => unreachable!("made by the stack"),
    };
    let listener = c
        .elb
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(action)
        .send()
        .await
        .expect("CreateListener");
    let listener = listener.listeners()[0].listener_arn().unwrap().to_string();
    (
        listener,
        tgs,
        vec![format!("{name}-5xx"), format!("{name}-p99")],
    )
}

/// A rule on `listener` (`/api/*`) with its own weighted forward, 100/0.
async fn api_rule(c: &Clients, listener: &str, tgs: &[String]) -> String {
    let tuple = |tg: &str, w: i32| {
        TargetGroupTuple::builder()
            .target_group_arn(tg)
            .weight(w)
            .build()
    };
    let weighted = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(tuple(&tgs[0], 100))
                .target_groups(tuple(&tgs[1], 0))
                .build(),
        )
        .build();
    let rule = c
        .elb
        .create_rule()
        .listener_arn(listener)
        .priority(10)
        .conditions(
            aws_sdk_elasticloadbalancingv2::types::RuleCondition::builder()
                .field("path-pattern")
                .values("/api/*")
                .build(),
        )
        .actions(weighted)
        .send()
        .await
        .expect("CreateRule");
    rule.rules()[0].rule_arn().unwrap().to_string()
}

/// Blue: cluster `name`, a task definition, and service `name` of two
/// Fargate tasks attached to `tg`.
async fn blue_service(c: &Clients, name: &str, subnet_ids: Vec<String>, sg: String, tg: &str) {
    service(c, name, name, 2, subnet_ids, sg, tg).await
}

/// Cluster `cluster` (made if need be), a task definition, and service
/// `name` of `desired` Fargate tasks attached to `tg`.
async fn service(
    c: &Clients,
    cluster: &str,
    name: &str,
    desired: i32,
    subnet_ids: Vec<String>,
    sg: String,
    tg: &str,
) {
    let name_in = name;
    let name = cluster;
    c.ecs
        .create_cluster()
        .cluster_name(name)
        .send()
        .await
        .expect("CreateCluster");
    let td = c
        .ecs
        .register_task_definition()
        .family(name)
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("registry.example/app:1")
                .memory(512)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let td_arn = td
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    c.ecs
        .create_service()
        .cluster(name)
        .service_name(name_in)
        .task_definition(td_arn)
        .desired_count(desired)
        .launch_type(LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .set_subnets(Some(subnet_ids))
                        .security_groups(sg)
                        .assign_public_ip(AssignPublicIp::Disabled)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(tg)
                .container_name("app")
                .container_port(8080)
                .build(),
        )
        .send()
        .await
        .expect("CreateService");
}

/// Blue scales on CPU: green must too, from the first minute.
async fn blue_scaling(c: &Clients, name: &str) {
    scaling(c, name, name, (2, 6)).await
}

/// Service `service` of cluster `cluster` scales on CPU within `bounds`.
async fn scaling(c: &Clients, cluster: &str, service: &str, bounds: (i32, i32)) {
    let name = format!("{cluster}/{service}");
    use aws_sdk_applicationautoscaling::types::{
        MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
        TargetTrackingScalingPolicyConfiguration,
    };
    c.scaling
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(format!("service/{name}"))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .min_capacity(bounds.0)
        .max_capacity(bounds.1)
        .send()
        .await
        .expect("RegisterScalableTarget");
    c.scaling
        .put_scaling_policy()
        .policy_name("cpu60")
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(format!("service/{name}"))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(
            TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(60.0)
                .predefined_metric_specification(
                    PredefinedMetricSpecification::builder()
                        .predefined_metric_type(MetricType::EcsServiceAverageCpuUtilization)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("PutScalingPolicy");
}

/// Play ECS's part moto does not: register each active service's tasks as
/// healthy targets in its target group, and deregister them when it goes.
/// `skip` names services whose tasks never become healthy.
pub fn register_targets_like_ecs(
    c: &Clients,
    f: &Fixture,
    skip: Option<String>,
) -> tokio::task::JoinHandle<()> {
    register_targets_like_ecs_every(c, f, skip, Duration::from_millis(100))
}

/// [`register_targets_like_ecs`], looking every `period` (the benchmark runs
/// fifty of these at once and must not swamp moto with them).
pub fn register_targets_like_ecs_every(
    c: &Clients,
    f: &Fixture,
    skip: Option<String>,
    period: Duration,
) -> tokio::task::JoinHandle<()> {
    let (c, f) = (c.clone(), f.clone());
    tokio::spawn(async move {
        let mut next_ip = 10u32;
        let mut registered: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        loop {
            let names = vec![
                f.name.clone(),
                format!("{}-a", f.name),
                format!("{}-b", f.name),
            ];
            if let Ok(out) = c
                .ecs
                .describe_services()
                .cluster(&f.cluster)
                .set_services(Some(names))
                // moto switches tag output on shared state: ask as teal does, or teal's answers lose their tags.
                .include(aws_sdk_ecs::types::ServiceField::Tags)
                .send()
                .await
            {
                let mut active = BTreeSet::new();
                for s in out.services() {
                    let name = s.service_name().unwrap_or_default().to_string();
                    // A service at zero tasks (parked) has no targets.
                    if s.status() != Some("ACTIVE")
                        || s.desired_count() == 0
                        || Some(&name) == skip.as_ref()
                    {
                        continue;
                    }
                    active.insert(name.clone());
                    if registered.contains_key(&name) {
                        continue;
                    }
                    let Some(tg) = s
                        .load_balancers()
                        .first()
                        .and_then(|lb| lb.target_group_arn())
                        .map(String::from)
                    else {
                        continue;
                    };
                    let ips: Vec<String> = (0..s.desired_count())
                        .map(|_| {
                            next_ip += 1;
                            format!("10.0.{}.{}", next_ip / 250, next_ip % 250)
                        })
                        .collect();
                    if c.elb
                        .register_targets()
                        .target_group_arn(&tg)
                        .set_targets(Some(targets(&ips)))
                        .send()
                        .await
                        .is_ok()
                    {
                        registered.insert(name, (tg, ips));
                    }
                }
                let gone: Vec<String> = registered
                    .keys()
                    .filter(|n| !active.contains(*n))
                    .cloned()
                    .collect();
                for name in gone {
                    let (tg, ips) = registered.remove(&name).unwrap();
                    let _ = c
                        .elb
                        .deregister_targets()
                        .target_group_arn(&tg)
                        .set_targets(Some(targets(&ips)))
                        .send()
                        .await;
                }
            }
            tokio::time::sleep(period).await;
        }
    })
}

fn targets(ips: &[String]) -> Vec<TargetDescription> {
    ips.iter()
        .map(|ip| TargetDescription::builder().id(ip).port(8080).build())
        .collect()
}

/// The listener's forward weights as (slot A, slot B), raw.
pub async fn weights(c: &Clients, f: &Fixture) -> (i32, i32) {
    let out = c
        .elb
        .describe_listeners()
        .listener_arns(&f.listener)
        .send()
        .await
        .expect("DescribeListeners");
    let action = &out.listeners()[0].default_actions()[0];
    match action
        .forward_config()
        .filter(|fc| !fc.target_groups().is_empty())
    {
        Some(fc) => {
            let w = |tg: &str| {
                fc.target_groups()
                    .iter()
                    .filter(|t| t.target_group_arn() == Some(tg))
                    .map(|t| t.weight().unwrap_or(1))
                    .sum()
            };
            (w(&f.tg_a), w(&f.tg_b))
        }
        None if action.target_group_arn() == Some(f.tg_a.as_str()) => (100, 0),
        None if action.target_group_arn() == Some(f.tg_b.as_str()) => (0, 100),
        None => (0, 0),
    }
}

/// A rule's forward weights as (slot A, slot B), raw.
pub async fn rule_weights(c: &Clients, f: &Fixture) -> (i32, i32) {
    let out = c
        .elb
        .describe_rules()
        .rule_arns(&f.rule)
        .send()
        .await
        .expect("DescribeRules");
    let fc = out.rules()[0].actions()[0]
        .forward_config()
        .expect("a weighted forward")
        .clone();
    let w = |tg: &str| {
        fc.target_groups()
            .iter()
            .filter(|t| t.target_group_arn() == Some(tg))
            .map(|t| t.weight().unwrap_or(1))
            .sum()
    };
    (w(&f.tg_a), w(&f.tg_b))
}

/// Active service names in the fixture's cluster, by name.
pub async fn active_services(c: &Clients, f: &Fixture) -> Vec<String> {
    services_now(c, f).await.into_keys().collect()
}

/// The image of each container in the task definition green's service (slot b) runs.
pub async fn green_images(c: &Clients, f: &Fixture) -> Vec<(String, String)> {
    let green = c
        .ecs
        .describe_services()
        .cluster(&f.cluster)
        .services(format!("{}-b", f.name))
        .send()
        .await
        .expect("DescribeServices");
    let td = green.services()[0].task_definition().unwrap().to_string();
    let td = c
        .ecs
        .describe_task_definition()
        .task_definition(td)
        .send()
        .await
        .expect("DescribeTaskDefinition");
    td.task_definition()
        .unwrap()
        .container_definitions()
        .iter()
        .map(|c| {
            (
                c.name().unwrap_or_default().to_string(),
                c.image().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Wait until the listener's weights read `want` (at most a minute).
pub async fn wait_for_weights(c: &Clients, f: &Fixture, want: (i32, i32)) {
    let t0 = std::time::Instant::now();
    while weights(c, f).await != want {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the listener never read {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `teal.toml` for the fixture; `strategy` is the `[strategy]` body.
pub fn config(f: &Fixture, strategy: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("teal.toml");
    let alarms = f
        .alarms
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &path,
        format!(
            r#"[service]
name = "{name}"

[fleet]
kind = "ecs"
cluster = "{cluster}"
service = "{name}"
container = "app"
container_port = 8080

[router]
kind = "{router}"
listener_arn = "{listener}"
target_groups = ["{a}", "{b}"]

[gates]
alarms = [{alarms}]

[strategy]
{strategy}
"#,
            name = f.name,
            cluster = f.cluster,
            listener = f.listener,
            router = if f.network { "nlb" } else { "alb" },
            a = f.tg_a,
            b = f.tg_b,
        ),
    )
    .unwrap();
    (dir, path)
}

/// The fixture's config with one target group (slot A, where the service is).
pub fn one_target_group(f: &Fixture, strategy: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, cfg) = config(f, strategy);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("target_groups = [\"{}\", \"{}\"]", f.tg_a, f.tg_b),
        &format!("target_groups = [\"{}\"]", f.tg_a),
    );
    assert!(!text.contains(&f.tg_b), "one target group left");
    std::fs::write(&cfg, text).unwrap();
    (dir, cfg)
}

/// A rolling update for tests: half the tasks may be replaced at once, bake 3s.
pub const FAST_ROLLING: &str = r#"rolling = { min_healthy_percent = 50, max_percent = 200, bake = "3s" }
poll = "1s"
green_healthy_timeout = "30s""#;

/// Short bakes for tests: canary 50% for 3s, keep-alive 2s, polls every second.
pub const FAST_CANARY: &str = r#"canary = { percent = 50, bake = "3s" }
keep_alive = "2s"
poll = "1s"
green_healthy_timeout = "30s""#;

/// Append a `[hooks]` section to a config.
pub fn with_hooks(cfg: &Path, hooks: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new().append(true).open(cfg).unwrap();
    writeln!(f, "\n[hooks]\n{hooks}").unwrap();
}

/// A hook command that appends `POINT STEP/STEPS GREEN_WEIGHT` (what it was
/// told) to a log in `dir`: the log's path and the command.
pub fn logging_hook(dir: &Path) -> (PathBuf, String) {
    let log = dir.join("log");
    let line = format!(
        "echo \"$TEAL_HOOK $TEAL_STEP/$TEAL_STEPS $TEAL_GREEN_WEIGHT\" >> {}",
        log.display()
    );
    (log, line)
}

//! Fixtures for the AWS tests: moto's address, SDK clients pointed at it, a
//! load balancer with three target groups, an ECS service as blue, alarms,
//! and a stand-in for what ECS does that moto does not (registering a
//! service's tasks as targets), and of the instance-refresh API moto lacks
//! ([`refresh_stand_in`]).

#![allow(dead_code)]

pub mod refresh_stand_in;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerDefinition, LaunchType, LoadBalancer,
    NetworkConfiguration, PortMapping,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, ProtocolEnum, TargetDescription, TargetGroupTuple,
    TargetTypeEnum,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Where moto and the CloudWatch shim listen.
#[derive(Debug, Clone)]
pub struct Moto {
    pub endpoint: String,
    pub cloudwatch: String,
}

/// moto's address from the environment. In CI a missing address fails the
/// test; elsewhere the test is skipped with a note on how to start moto.
pub fn moto() -> Option<Moto> {
    match (
        std::env::var("TEAL_MOTO_ENDPOINT"),
        std::env::var("TEAL_MOTO_CLOUDWATCH_ENDPOINT"),
    ) {
        (Ok(endpoint), Ok(cloudwatch)) => Some(Moto {
            endpoint,
            cloudwatch,
        }),
        _ if std::env::var_os("CI").is_some() => {
            panic!("TEAL_MOTO_ENDPOINT / TEAL_MOTO_CLOUDWATCH_ENDPOINT are not set; .ci/run starts moto and sets them")
        }
        _ => {
            eprintln!(
                "SKIPPED: moto is not running. Start it with: eval \"$(tests/support/moto-up.sh)\""
            );
            None
        }
    }
}

/// The environment a `teal` process needs to talk to moto.
pub fn teal_env(m: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", m.endpoint.clone()),
        ("AWS_ENDPOINT_URL_CLOUDWATCH", m.cloudwatch.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        // moto's occasional 500s would be retried into duplicates by the SDK.
        ("AWS_MAX_ATTEMPTS", "1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

pub async fn sdk(m: &Moto) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .endpoint_url(&m.endpoint)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// Clients for every service the tests touch.
#[derive(Clone)]
pub struct Clients {
    pub scaling: aws_sdk_applicationautoscaling::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub cw: aws_sdk_cloudwatch::Client,
    pub ddb: aws_sdk_dynamodb::Client,
}

/// The DynamoDB table ALB routers keep their record in, as an account would
/// have it (`examples/codepipeline/prerequisites.yml` makes the same one).
pub const LEDGER_TABLE: &str = "teal-ledger";

/// Create the ledger table unless it exists (tests share one moto).
pub async fn ensure_ledger_table(ddb: &aws_sdk_dynamodb::Client) {
    ensure_table(ddb, LEDGER_TABLE, "id").await;
}

/// Create an on-demand table keyed by one string attribute `key`, unless
/// it exists.
pub async fn ensure_table(ddb: &aws_sdk_dynamodb::Client, name: &str, key: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let made = ddb
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    if let Err(e) = made {
        let code = aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e)
            .unwrap_or_default()
            .to_string();
        assert_eq!(code, "ResourceInUseException", "CreateTable {name}: {e:?}");
    }
}

/// The deployment record teal keeps for the router `key` (a listener or
/// rule ARN) in the ledger table, with its version.
pub async fn ledger_record(c: &Clients, key: &str) -> Option<teal::engine::Record> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let out = c
        .ddb
        .get_item()
        .table_name(LEDGER_TABLE)
        .key("id", AttributeValue::S(key.to_string()))
        .consistent_read(true)
        .send()
        .await
        .ok()?;
    let item = out.item()?;
    let mut rec: teal::engine::Record =
        serde_json::from_str(item.get("record")?.as_s().ok()?).ok()?;
    rec.version = item.get("version")?.as_n().ok()?.parse().ok()?;
    Some(rec)
}

pub async fn clients(m: &Moto) -> Clients {
    let sdk = sdk(m).await;
    let cw_conf = aws_sdk_cloudwatch::config::Builder::from(&sdk)
        .endpoint_url(&m.cloudwatch)
        .build();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    ensure_ledger_table(&ddb).await;
    Clients {
        ddb,
        scaling: aws_sdk_applicationautoscaling::Client::new(&sdk),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
        ecs: aws_sdk_ecs::Client::new(&sdk),
        ec2: aws_sdk_ec2::Client::new(&sdk),
        cw: aws_sdk_cloudwatch::Client::from_conf(cw_conf),
    }
}

/// A unique short name per test run and fixture.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}-{}",
        std::process::id() % 10_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

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
}

/// moto's default VPC and two of its subnets.
async fn default_network(c: &Clients) -> (String, Vec<String>) {
    let subnets = c
        .ec2
        .describe_subnets()
        .send()
        .await
        .expect("DescribeSubnets");
    let default: Vec<_> = subnets
        .subnets()
        .iter()
        .filter(|s| s.default_for_az() == Some(true))
        .take(2)
        .collect();
    let vpc = default[0].vpc_id().unwrap().to_string();
    (
        vpc,
        default
            .iter()
            .map(|s| s.subnet_id().unwrap().to_string())
            .collect(),
    )
}

/// A target group in `vpc`; its ARN.
async fn create_target_group(
    c: &Clients,
    name: &str,
    vpc: &str,
    port: i32,
    kind: TargetTypeEnum,
) -> String {
    let tg = c
        .elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(port)
        .vpc_id(vpc)
        .target_type(kind)
        .send()
        .await
        .expect("CreateTargetGroup");
    tg.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string()
}

/// A metric alarm on the ALB's 5xx count, starting OK.
pub async fn put_alarm(c: &Clients, name: &str) {
    c.cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");
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

pub async fn fixture(c: &Clients, forward: Forward) -> Fixture {
    let name = unique("t");
    let (vpc, subnet_ids) = default_network(c).await;
    let groups = c
        .ec2
        .describe_security_groups()
        .send()
        .await
        .expect("DescribeSecurityGroups");
    let sg = groups
        .security_groups()
        .iter()
        .find(|g| g.vpc_id() == Some(vpc.as_str()) && g.group_name() == Some("default"))
        .and_then(|g| g.group_id())
        .expect("the default VPC has a default security group")
        .to_string();

    let (listener, tgs, alarms) = if let Forward::Stack = forward {
        let out = stack_outputs(&name);
        let tgs = vec![
            out["TargetGroupA"].as_str().unwrap().to_string(),
            out["TargetGroupB"].as_str().unwrap().to_string(),
            create_target_group(c, &format!("{name}-x"), &vpc, 8080, TargetTypeEnum::Ip).await,
        ];
        // moto's CloudFormation has no AWS::CloudWatch::Alarm: made here, as the template names them.
        let alarms = vec![format!("{name}-5xx"), format!("{name}-p99-latency")];
        (
            out["ListenerArn"].as_str().unwrap().to_string(),
            tgs,
            alarms,
        )
    } else {
        let lb = c
            .elb
            .create_load_balancer()
            .name(&name)
            .set_subnets(Some(subnet_ids.clone()))
            .send()
            .await
            .expect("CreateLoadBalancer");
        let lb_arn = lb.load_balancers()[0]
            .load_balancer_arn()
            .unwrap()
            .to_string();
        let mut tgs = Vec::new();
        for suffix in ["a", "b", "x"] {
            tgs.push(
                create_target_group(
                    c,
                    &format!("{name}-{suffix}"),
                    &vpc,
                    8080,
                    TargetTypeEnum::Ip,
                )
                .await,
            );
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
    };
    let weighted = |a: i32, b: i32| {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(&tgs[0])
                            .weight(a)
                            .build(),
                    )
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(&tgs[1])
                            .weight(b)
                            .build(),
                    )
                    .build(),
            )
            .build()
    };
    let rule = c
        .elb
        .create_rule()
        .listener_arn(&listener)
        .priority(10)
        .conditions(
            aws_sdk_elasticloadbalancingv2::types::RuleCondition::builder()
                .field("path-pattern")
                .values("/api/*")
                .build(),
        )
        .actions(weighted(100, 0))
        .send()
        .await
        .expect("CreateRule");
    let rule = rule.rules()[0].rule_arn().unwrap().to_string();

    c.ecs
        .create_cluster()
        .cluster_name(&name)
        .send()
        .await
        .expect("CreateCluster");
    let td = c
        .ecs
        .register_task_definition()
        .family(&name)
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
        .cluster(&name)
        .service_name(&name)
        .task_definition(td_arn)
        .desired_count(2)
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
                .target_group_arn(&tgs[0])
                .container_name("app")
                .container_port(8080)
                .build(),
        )
        .send()
        .await
        .expect("CreateService");

    // Blue scales on CPU: green must too, from the first minute.
    use aws_sdk_applicationautoscaling::types::{
        MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
        TargetTrackingScalingPolicyConfiguration,
    };
    c.scaling
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(format!("service/{name}/{name}"))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .min_capacity(2)
        .max_capacity(6)
        .send()
        .await
        .expect("RegisterScalableTarget");
    c.scaling
        .put_scaling_policy()
        .policy_name("cpu60")
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(format!("service/{name}/{name}"))
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
    }
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
                    if s.status() != Some("ACTIVE") || Some(&name) == skip.as_ref() {
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

/// Active service names in the fixture's cluster.
pub async fn active_services(c: &Clients, f: &Fixture) -> Vec<String> {
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
        .filter_map(|s| s.service_name().map(String::from))
        .collect()
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

pub async fn set_alarm(c: &Clients, alarm: &str, state: aws_sdk_cloudwatch::types::StateValue) {
    c.cw.set_alarm_state()
        .alarm_name(alarm)
        .state_value(state)
        .state_reason("set by the test")
        .send()
        .await
        .expect("SetAlarmState");
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
kind = "alb"
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

/// `teal` as a child process against moto.
pub fn teal(m: &Moto, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_teal"));
    cmd.args(args)
        .envs(teal_env(m))
        .env_remove("CODEBUILD_RESOLVED_SOURCE_VERSION")
        .env_remove("TEAL_CONFIG");
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// The instance-refresh stand-in in front of moto, moving refreshes on as
/// they are read (held at InProgress if `hold`): its state, and its address
/// for `AWS_ENDPOINT_URL_AUTO_SCALING`.
pub async fn refresh_stand_in(
    m: &Moto,
    hold: bool,
) -> (
    std::sync::Arc<std::sync::Mutex<refresh_stand_in::Service>>,
    String,
) {
    let service = std::sync::Arc::new(std::sync::Mutex::new(refresh_stand_in::Service {
        auto: true,
        hold,
        ..Default::default()
    }));
    let addr = refresh_stand_in::serve(service.clone(), Some(m.endpoint.clone())).await;
    (service, format!("http://{addr}"))
}

/// Wait until the stand-in's newest refresh has `status` (at most a minute).
pub async fn wait_for_refresh(
    service: &std::sync::Arc<std::sync::Mutex<refresh_stand_in::Service>>,
    status: &str,
) {
    let t0 = std::time::Instant::now();
    loop {
        if service.lock().unwrap().refreshes.first().map(|r| r.status) == Some(status) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no refresh reached {status}: {:?}",
            service.lock().unwrap().refreshes
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `teal` against moto, its Auto Scaling calls through the stand-in at `proxy`.
pub fn teal_via(m: &Moto, proxy: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = teal(m, args);
    cmd.env("AWS_ENDPOINT_URL_AUTO_SCALING", proxy);
    cmd
}

/// Run `teal` to its end; assert its exit code (showing both streams if it
/// differs) and return (stdout, stderr).
pub async fn run_teal(m: &Moto, args: &[&str], code: i32) -> (String, String) {
    run(teal(m, args), args, code).await
}

/// Run `teal` through the refresh stand-in at `proxy` to its end; assert its
/// exit code and return (stdout, stderr).
pub async fn run_teal_via(m: &Moto, proxy: &str, args: &[&str], code: i32) -> (String, String) {
    run(teal_via(m, proxy, args), args, code).await
}

async fn run(mut cmd: tokio::process::Command, args: &[&str], code: i32) -> (String, String) {
    let out = cmd.output().await.expect("teal runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "teal {}:\n{stdout}\n{stderr}",
        args.join(" ")
    );
    (stdout, stderr)
}

/// `teal deploy --config CFG --image registry.example/app:2 EXTRA...` to its
/// end, asserting its exit code; returns (stdout, stderr).
pub async fn deploy_app_2(m: &Moto, cfg: &Path, extra: &[&str], code: i32) -> (String, String) {
    app_2(m, "deploy", cfg, extra, code).await
}

/// `teal COMMAND --config CFG --image registry.example/app:2 EXTRA...` (deploy
/// or verify) to its end, asserting its exit code; returns (stdout, stderr).
pub async fn app_2(
    m: &Moto,
    command: &str,
    cfg: &Path,
    extra: &[&str],
    code: i32,
) -> (String, String) {
    let mut args = vec![
        command,
        "--config",
        cfg.to_str().unwrap(),
        "--image",
        "registry.example/app:2",
    ];
    args.extend_from_slice(extra);
    run_teal(m, &args, code).await
}

/// `teal deploy --config CFG --image registry.example/app:2` started in the background.
pub fn spawn_deploy_app_2(m: &Moto, cfg: &Path) -> tokio::process::Child {
    teal(
        m,
        &[
            "deploy",
            "--config",
            cfg.to_str().unwrap(),
            "--image",
            "registry.example/app:2",
        ],
    )
    .spawn()
    .unwrap()
}

/// `teal status --output json`, parsed.
pub async fn status_json(m: &Moto, cfg: &Path) -> serde_json::Value {
    let (status, _) = run_teal(
        m,
        &[
            "status",
            "--config",
            cfg.to_str().unwrap(),
            "--output",
            "json",
        ],
        0,
    )
    .await;
    serde_json::from_str(status.trim()).unwrap()
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

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The mutating operations among the API calls a run reported.
pub fn mutating_calls(stdout: &str) -> Vec<String> {
    let Some(line) = stdout.lines().find(|l| l.starts_with("AWS API calls:")) else {
        return vec!["(no summary)".into()];
    };
    let read_only = ["Describe", "List", "Get"];
    line.split(['(', ')', ' '])
        .filter_map(|w| w.split_once('='))
        .map(|(op, _)| op.to_string())
        .filter(|op| !read_only.iter().any(|p| op.starts_with(p)))
        .collect()
}

/// Auto Scaling behind two weighted Route 53 records.
#[derive(Debug, Clone)]
pub struct AsgFixture {
    pub name: String,
    pub zone: String,
    pub record: String,
    pub tg_a: String,
    pub tg_b: String,
    pub template_id: String,
    pub alarms: Vec<String>,
}

pub const AMI_BLUE: &str = "ami-03cf127a";
pub const AMI_GREEN: &str = "ami-12c6146b";

pub async fn asg_fixture(m: &Moto) -> AsgFixture {
    use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
    };
    let sdk = sdk(m).await;
    let c = clients(m).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let name = unique("g");
    let (vpc, subnet_ids) = default_network(&c).await;
    let mut tgs = Vec::new();
    for suffix in ["a", "b"] {
        tgs.push(
            create_target_group(
                &c,
                &format!("{name}-{suffix}"),
                &vpc,
                80,
                TargetTypeEnum::Instance,
            )
            .await,
        );
    }
    let lt = c
        .ec2
        .create_launch_template()
        .launch_template_name(&name)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(AMI_BLUE)
                .instance_type(aws_sdk_ec2::types::InstanceType::T2Micro)
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
    let template_id = lt
        .launch_template()
        .unwrap()
        .launch_template_id()
        .unwrap()
        .to_string();
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&name)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(&template_id)
                .version("1")
                .build(),
        )
        .min_size(1)
        .max_size(4)
        .desired_capacity(2)
        .vpc_zone_identifier(subnet_ids.join(","))
        .target_group_arns(&tgs[0])
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    asg.put_scaling_policy()
        .auto_scaling_group_name(&name)
        .policy_name("cpu50")
        .policy_type("TargetTrackingScaling")
        .target_tracking_configuration(
            aws_sdk_autoscaling::types::TargetTrackingConfiguration::builder()
                .predefined_metric_specification(
                    aws_sdk_autoscaling::types::PredefinedMetricSpecification::builder()
                        .predefined_metric_type(
                            aws_sdk_autoscaling::types::MetricType::AsgAverageCpuUtilization,
                        )
                        .build(),
                )
                .target_value(50.0)
                .build(),
        )
        .send()
        .await
        .expect("PutScalingPolicy");

    let zone = r53
        .create_hosted_zone()
        .name(format!("{name}.example.com"))
        .caller_reference(&name)
        .send()
        .await
        .expect("CreateHostedZone");
    let zone = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    let record = format!("api.{name}.example.com.");
    let changes: Vec<Change> = [("a", 255), ("b", 0)]
        .into_iter()
        .map(|(id, w)| {
            let rrs = ResourceRecordSet::builder()
                .name(&record)
                .r#type(RrType::Cname)
                .set_identifier(format!("{name}-{id}"))
                .weight(w)
                .ttl(30)
                .resource_records(
                    ResourceRecord::builder()
                        .value(format!("{id}.elb.example.com"))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap();
            Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(rrs)
                .build()
                .unwrap()
        })
        .collect();
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            ChangeBatch::builder()
                .set_changes(Some(changes))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("ChangeResourceRecordSets");

    let alarms = vec![format!("{name}-5xx")];
    for a in &alarms {
        put_alarm(&c, a).await;
    }
    AsgFixture {
        name,
        zone,
        record,
        tg_a: tgs[0].clone(),
        tg_b: tgs[1].clone(),
        template_id,
        alarms,
    }
}

/// The fixture's groups that exist among `NAME`, `NAME-a` and `NAME-b`.
pub async fn asg_groups(m: &Moto, f: &AsgFixture) -> Vec<String> {
    let asg = aws_sdk_autoscaling::Client::new(&sdk(m).await);
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&f.name)
        .auto_scaling_group_names(format!("{}-a", f.name))
        .auto_scaling_group_names(format!("{}-b", f.name))
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    out.auto_scaling_groups()
        .iter()
        .filter_map(|g| g.auto_scaling_group_name().map(String::from))
        .collect()
}

/// The fixture's record weights (slot a, slot b), raw 0..=255.
pub async fn record_weights(m: &Moto, f: &AsgFixture) -> (i64, i64) {
    let r53 = aws_sdk_route53::Client::new(&sdk(m).await);
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(&f.zone)
        .start_record_name(&f.record)
        .send()
        .await
        .expect("ListResourceRecordSets");
    let w = |id: String| {
        out.resource_record_sets()
            .iter()
            .find(|r| r.set_identifier() == Some(id.as_str()))
            .and_then(|r| r.weight())
            .unwrap_or(-1)
    };
    (w(format!("{}-a", f.name)), w(format!("{}-b", f.name)))
}

pub fn asg_config(f: &AsgFixture, strategy: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("teal.toml");
    std::fs::write(
        &path,
        format!(
            r#"[service]
name = "{name}"

[fleet]
kind = "asg"
group = "{name}"
target_groups = ["{a}", "{b}"]

[router]
kind = "route53"
hosted_zone_id = "{zone}"
record_name = "{record}"
record_type = "CNAME"
set_identifiers = ["{name}-a", "{name}-b"]

[gates]
alarms = [{alarms}]

[strategy]
{strategy}
"#,
            name = f.name,
            a = f.tg_a,
            b = f.tg_b,
            zone = f.zone,
            record = f.record,
            alarms = f
                .alarms
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    )
    .unwrap();
    (dir, path)
}

//! moto's address, SDK clients pointed at it, the ledger table, alarms,
//! and the default network every fixture builds in.

use super::*;

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

/// A metric alarm on the ALB's 5xx count, starting OK.
pub async fn put_alarm(c: &Clients, name: &str) {
    put_alarm_on(c, name, None).await
}

/// [`put_alarm`] with one dimension (name, value).
pub async fn put_alarm_on(c: &Clients, name: &str, dimension: Option<(&str, &str)>) {
    c.cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .set_dimensions(dimension.map(|(n, v)| {
            vec![aws_sdk_cloudwatch::types::Dimension::builder()
                .name(n)
                .value(v)
                .build()]
        }))
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");
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

/// moto's default VPC and two of its subnets.
pub async fn default_network(c: &Clients) -> (String, Vec<String>) {
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
pub async fn create_target_group(
    c: &Clients,
    name: &str,
    vpc: &str,
    port: i32,
    kind: TargetTypeEnum,
) -> String {
    create_target_group_speaking(c, name, vpc, port, kind, ProtocolEnum::Http).await
}

/// [`create_target_group`] with another protocol (an NLB's: TCP, UDP...).
pub async fn create_target_group_speaking(
    c: &Clients,
    name: &str,
    vpc: &str,
    port: i32,
    kind: TargetTypeEnum,
    protocol: ProtocolEnum,
) -> String {
    let tg = c
        .elb
        .create_target_group()
        .name(name)
        .protocol(protocol)
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

/// An S3 client of moto, path-style (moto has no per-bucket host names).
pub fn s3(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// The keys under `prefix` in `bucket` (one page).
pub async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(String::from))
        .collect()
}

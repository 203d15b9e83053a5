//! An Auto Scaling group as blue behind two weighted Route 53 records, what
//! the tests read back, and its config.

use super::*;

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

/// An Auto Scaling group as blue (two instances of a launch template, in
/// slot A's target group, scaling on CPU) behind two weighted Route 53
/// records, 255/0, and one alarm.
pub async fn asg_fixture(m: &Moto) -> AsgFixture {
    build(m, "g", &[("", 0, (1, 4, 2))]).await
}

/// [`asg_fixture`] with slots that exist beforehand, as Terraform would
/// declare them: groups `NAME-a` (blue: 1..4, two instances, in slot A's
/// target group) and `NAME-b` (0..0, none, in slot B's), no group `NAME`.
pub async fn asg_existing_fixture(m: &Moto) -> AsgFixture {
    build(m, "e", &[("-a", 0, (1, 4, 2)), ("-b", 1, (0, 0, 0))]).await
}

/// The fixture with `groups`: each `NAME{suffix}`, in slot `slot`'s target
/// group, sized `(min, max, desired)`.
async fn build(m: &Moto, prefix: &str, groups: &[(&str, usize, (i32, i32, i32))]) -> AsgFixture {
    let sdk = sdk(m).await;
    let c = clients(m).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let name = unique(prefix);
    let (vpc, subnet_ids) = default_network(&c).await;
    let mut tgs = Vec::new();
    for suffix in ["a", "b"] {
        let tg_name = format!("{name}-{suffix}");
        tgs.push(create_target_group(&c, &tg_name, &vpc, 80, TargetTypeEnum::Instance).await);
    }
    let template_id = launch_template(&c, &name).await;
    for (suffix, slot, size) in groups {
        let g = format!("{name}{suffix}");
        group(&asg, &g, &template_id, &subnet_ids, &tgs[*slot], *size).await;
    }
    let (zone, record) = weighted_records(&r53, &name).await;
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

/// Each of the fixture's groups (`NAME`, `NAME-a`, `NAME-b`) that exists:
/// (min, max, desired) and its launch template version.
pub async fn group_sizes(m: &Moto, f: &AsgFixture) -> BTreeMap<String, ((i32, i32, i32), String)> {
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
        .map(|g| {
            (
                g.auto_scaling_group_name().unwrap_or_default().to_string(),
                (
                    (
                        g.min_size().unwrap_or(-1),
                        g.max_size().unwrap_or(-1),
                        g.desired_capacity().unwrap_or(-1),
                    ),
                    g.launch_template()
                        .and_then(|t| t.version())
                        .unwrap_or_default()
                        .to_string(),
                ),
            )
        })
        .collect()
}

/// A launch template `name` of [`AMI_BLUE`]; its id.
pub async fn launch_template(c: &Clients, name: &str) -> String {
    let lt = c
        .ec2
        .create_launch_template()
        .launch_template_name(name)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(AMI_BLUE)
                .instance_type(aws_sdk_ec2::types::InstanceType::T2Micro)
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
    lt.launch_template()
        .unwrap()
        .launch_template_id()
        .unwrap()
        .to_string()
}

/// Group `name` of the template's version 1 with `(min, max, desired)`,
/// in `tg`, with a CPU target-tracking policy.
async fn group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
    template_id: &str,
    subnet_ids: &[String],
    tg: &str,
    (min, max, desired): (i32, i32, i32),
) {
    use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(template_id)
                .version("1")
                .build(),
        )
        .min_size(min)
        .max_size(max)
        .desired_capacity(desired)
        .vpc_zone_identifier(subnet_ids.join(","))
        .target_group_arns(tg)
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    asg.put_scaling_policy()
        .auto_scaling_group_name(name)
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
}

/// A hosted zone with two weighted CNAME records, slot A 255 and slot B 0;
/// the zone's id and the record's name.
async fn weighted_records(r53: &aws_sdk_route53::Client, name: &str) -> (String, String) {
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
    };
    let zone = r53
        .create_hosted_zone()
        .name(format!("{name}.example.com"))
        .caller_reference(name)
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
    (zone, record)
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

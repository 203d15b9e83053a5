//! What `teal init` finds, read-only, about a service that already runs: the
//! fleet, the target group it is in, the listener (or rule) forwarding to
//! it, the second slot's target group when there is one, and the alarms
//! that watch any of them. The one write, on request, is slot B's target
//! group ([`create_slot_b`]), copied from blue's.

use crate::aws::{ApiCalls, Aws};
use crate::aws_call;
use crate::config::Balancer;
use crate::ports::{ErrorKind, PortError};
use aws_sdk_elasticloadbalancingv2::types::{Action, TargetGroup};
use std::collections::BTreeSet;

/// Where to start looking.
#[derive(Debug, Clone)]
pub enum Start {
    /// An ECS service.
    Ecs {
        /// Its cluster (name or ARN).
        cluster: String,
        /// Its name.
        service: String,
    },
    /// An Auto Scaling group.
    Asg {
        /// Its name.
        group: String,
    },
    /// A listener: the fleet is whatever is in the target group it forwards to.
    Listener(String),
}

/// The fleet found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundFleet {
    /// An ECS service.
    Ecs {
        /// Its cluster's name.
        cluster: String,
        /// The service.
        service: String,
        /// The container attached to the target group, and its port.
        container: String,
        /// The port.
        container_port: i32,
    },
    /// An Auto Scaling group.
    Asg {
        /// Its name.
        group: String,
    },
}

/// Everything found.
#[derive(Debug, Clone)]
pub struct Found {
    /// The fleet, when one was found.
    pub fleet: Option<FoundFleet>,
    /// Application or network.
    pub balancer: Balancer,
    /// The listener whose default action forwards to blue's target group.
    pub listener: Option<String>,
    /// Or the listener rule that does.
    pub rule: Option<String>,
    /// Blue's target group.
    pub blue: TargetGroup,
    /// Slot B's target group: the forward's other one, or one named as
    /// teal suggests ([`Found::slot_b_name`]).
    pub slot_b: Option<String>,
    /// Alarms whose dimensions name the load balancer, a slot's target
    /// group, the service or the group.
    pub alarms: Vec<String>,
}

impl Found {
    /// The name teal suggests for slot B's target group: blue's with `-a`
    /// turned into `-b`, or `-b` appended (at most 32 characters, ELB's limit).
    pub fn slot_b_name(&self) -> String {
        slot_b_name(self.blue.target_group_name().unwrap_or("teal"))
    }
}

/// Blue's target group name → slot B's.
pub fn slot_b_name(blue: &str) -> String {
    match blue.strip_suffix("-a") {
        Some(base) => format!("{base}-b"),
        None => {
            let base: String = blue.chars().take(30).collect();
            format!("{}-b", base.trim_end_matches('-'))
        }
    }
}

fn not_found(op: &str, what: String) -> PortError {
    PortError::new(op, ErrorKind::NotFound, what)
}

/// Find everything from `start`, with read-only calls.
pub async fn discover(aws: &Aws, start: &Start) -> Result<Found, PortError> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&aws.sdk);
    let calls = &aws.calls;
    let (fleet, blue_tg, listener_given, given_lb) = match start {
        Start::Ecs { cluster, service } => {
            let (fleet, tg) = ecs_service(aws, cluster, service).await?;
            (Some(fleet), tg, None, None)
        }
        Start::Asg { group } => {
            let (fleet, tg) = asg_group(aws, group).await?;
            (Some(fleet), tg, None, None)
        }
        Start::Listener(arn) => {
            let out = aws_call!(
                calls,
                "DescribeListeners",
                elb.describe_listeners().listener_arns(arn).send()
            )?;
            let l = out
                .listeners()
                .first()
                .ok_or_else(|| not_found("DescribeListeners", format!("listener {arn}")))?;
            let tg = heaviest(l.default_actions()).ok_or_else(|| {
                PortError::new(
                    "DescribeListeners",
                    ErrorKind::Invalid,
                    format!("listener {arn} forwards to no target group"),
                )
            })?;
            let lb = l.load_balancer_arn().map(String::from);
            (fleet_in(aws, &tg).await?, tg, Some(arn.clone()), lb)
        }
    };
    let out = aws_call!(
        calls,
        "DescribeTargetGroups",
        elb.describe_target_groups()
            .target_group_arns(&blue_tg)
            .send()
    )?;
    let blue = out
        .target_groups()
        .first()
        .cloned()
        .ok_or_else(|| not_found("DescribeTargetGroups", format!("target group {blue_tg}")))?;
    // The listener's own load balancer, when init starts from one (moto
    // leaves LoadBalancerArns empty for a group named only in a weighted
    // forward; AWS lists it).
    let lb = given_lb.or_else(|| blue.load_balancer_arns().first().cloned()).ok_or_else(|| {
        PortError::new(
            "DescribeTargetGroups",
            ErrorKind::Invalid,
            format!(
                "target group {blue_tg} is behind no load balancer: teal shifts traffic at a listener"
            ),
        )
    })?;
    let lbs = aws_call!(
        calls,
        "DescribeLoadBalancers",
        elb.describe_load_balancers().load_balancer_arns(&lb).send()
    )?;
    let balancer = match lbs.load_balancers().first().and_then(|l| l.r#type()) {
        Some(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network) => {
            Balancer::Network
        }
        _ => Balancer::Application,
    };
    // The listener (default action) or rule forwarding to blue.
    let listeners = aws_call!(
        calls,
        "DescribeListeners",
        elb.describe_listeners().load_balancer_arn(&lb).send()
    )?;
    let mut listener = None;
    let mut rule = None;
    let mut forward = Vec::new();
    for l in listeners.listeners() {
        let arn = l.listener_arn().unwrap_or_default();
        if listener_given.as_deref().is_some_and(|g| g != arn) {
            continue;
        }
        let tgs = forwarded(l.default_actions());
        if tgs.contains(&blue_tg) {
            listener = Some(arn.to_string());
            forward = tgs;
            break;
        }
    }
    if listener.is_none() && balancer == Balancer::Application {
        'rules: for l in listeners.listeners() {
            let arn = l.listener_arn().unwrap_or_default();
            let rules = aws_call!(
                calls,
                "DescribeRules",
                elb.describe_rules().listener_arn(arn).send()
            )?;
            for r in rules
                .rules()
                .iter()
                .filter(|r| r.is_default() != Some(true))
            {
                let tgs = forwarded(r.actions());
                if tgs.contains(&blue_tg) {
                    rule = r.rule_arn().map(String::from);
                    forward = tgs;
                    break 'rules;
                }
            }
        }
    }
    let mut slot_b = forward.iter().find(|t| **t != blue_tg).cloned();
    if slot_b.is_none() {
        let name = slot_b_name(blue.target_group_name().unwrap_or("teal"));
        slot_b = match aws_call!(
            calls,
            "DescribeTargetGroups",
            elb.describe_target_groups().names(&name).send()
        ) {
            Ok(out) => out
                .target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .map(String::from),
            Err(e)
                if e.kind == ErrorKind::NotFound || e.message.contains("TargetGroupNotFound") =>
            {
                None
            }
            Err(e) => return Err(e),
        };
    }
    let mut names = BTreeSet::new();
    let suffix = |arn: &str| arn.splitn(6, ':').nth(5).unwrap_or(arn).to_string();
    // loadbalancer/app/N/ID → app/N/ID, as CloudWatch's dimension spells it.
    names.insert(suffix(&lb).trim_start_matches("loadbalancer/").to_string());
    names.insert(suffix(&blue_tg));
    if let Some(b) = &slot_b {
        names.insert(suffix(b));
    }
    let base = match &fleet {
        Some(FoundFleet::Ecs { service, .. }) => Some(service),
        Some(FoundFleet::Asg { group }) => Some(group),
        None => None,
    };
    if let Some(base) = base {
        names.extend([base.clone(), format!("{base}-a"), format!("{base}-b")]);
    }
    let alarms = alarms_naming(aws, &names).await?;
    Ok(Found {
        fleet,
        balancer,
        listener,
        rule,
        blue,
        slot_b,
        alarms,
    })
}

/// The target group a forward sends the most traffic to: blue.
fn heaviest(actions: &[Action]) -> Option<String> {
    let forward = actions
        .iter()
        .find(|a| a.target_group_arn().is_some() || a.forward_config().is_some())?;
    let weighted = forward
        .forward_config()
        .map(|f| f.target_groups())
        .unwrap_or_default()
        .iter()
        .max_by_key(|t| t.weight().unwrap_or(1))
        .and_then(|t| t.target_group_arn());
    weighted.or(forward.target_group_arn()).map(String::from)
}

/// The name teal deploys under, for a service or group it finds: one teal
/// made is `NAME-a` or `NAME-b`, and the config names `NAME` (teal finds
/// blue among `NAME`, `NAME-a` and `NAME-b`).
fn base_name(name: &str) -> String {
    name.strip_suffix("-a")
        .or_else(|| name.strip_suffix("-b"))
        .filter(|b| !b.is_empty())
        .unwrap_or(name)
        .to_string()
}

/// The target groups a forward action sends to (plain or weighted).
fn forwarded(actions: &[Action]) -> Vec<String> {
    let mut out = Vec::new();
    for a in actions {
        if let Some(tg) = a.target_group_arn() {
            out.push(tg.to_string());
        }
        for t in a
            .forward_config()
            .map(|f| f.target_groups())
            .unwrap_or_default()
        {
            if let Some(tg) = t.target_group_arn() {
                if !out.iter().any(|o| o == tg) {
                    out.push(tg.to_string());
                }
            }
        }
    }
    out
}

async fn ecs_service(
    aws: &Aws,
    cluster: &str,
    service: &str,
) -> Result<(FoundFleet, String), PortError> {
    let ecs = aws_sdk_ecs::Client::new(&aws.sdk);
    let out = aws_call!(
        aws.calls,
        "DescribeServices",
        ecs.describe_services()
            .cluster(cluster)
            .services(service)
            .send()
    )?;
    let s = out
        .services()
        .iter()
        .find(|s| s.status() == Some("ACTIVE"))
        .ok_or_else(|| {
            not_found(
                "DescribeServices",
                format!("no active ECS service {service:?} in cluster {cluster:?}"),
            )
        })?;
    let lb = s
        .load_balancers()
        .iter()
        .find(|l| l.target_group_arn().is_some())
        .ok_or_else(|| {
            PortError::new(
                "DescribeServices",
                ErrorKind::Invalid,
                format!(
                    "ECS service {service:?} is attached to no target group: teal shifts traffic \
                     between two target groups behind a listener"
                ),
            )
        })?;
    Ok((
        FoundFleet::Ecs {
            cluster: cluster.rsplit('/').next().unwrap_or(cluster).to_string(),
            service: base_name(service),
            container: lb.container_name().unwrap_or("app").to_string(),
            container_port: lb.container_port().unwrap_or(80),
        },
        lb.target_group_arn().unwrap_or_default().to_string(),
    ))
}

async fn asg_group(aws: &Aws, group: &str) -> Result<(FoundFleet, String), PortError> {
    let asg = aws_sdk_autoscaling::Client::new(&aws.sdk);
    let out = aws_call!(
        aws.calls,
        "DescribeAutoScalingGroups",
        asg.describe_auto_scaling_groups()
            .auto_scaling_group_names(group)
            .send()
    )?;
    let g = out.auto_scaling_groups().first().ok_or_else(|| {
        not_found(
            "DescribeAutoScalingGroups",
            format!("no Auto Scaling group {group:?}"),
        )
    })?;
    let tg = g.target_group_arns().first().cloned().ok_or_else(|| {
        PortError::new(
            "DescribeAutoScalingGroups",
            ErrorKind::Invalid,
            format!(
                "Auto Scaling group {group:?} is attached to no target group: teal shifts traffic \
                 between two target groups behind a listener (or two Route 53 records: write \
                 that config by hand, see examples/asg-route53)"
            ),
        )
    })?;
    Ok((
        FoundFleet::Asg {
            group: base_name(group),
        },
        tg,
    ))
}

/// The Auto Scaling group in `tg`, if exactly one is.
async fn fleet_in(aws: &Aws, tg: &str) -> Result<Option<FoundFleet>, PortError> {
    let asg = aws_sdk_autoscaling::Client::new(&aws.sdk);
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let out = aws_call!(
            aws.calls,
            "DescribeAutoScalingGroups",
            asg.describe_auto_scaling_groups()
                .set_next_token(token.clone())
                .send()
        )?;
        found.extend(
            out.auto_scaling_groups()
                .iter()
                .filter(|g| g.target_group_arns().iter().any(|t| t == tg))
                .filter_map(|g| g.auto_scaling_group_name().map(String::from)),
        );
        token = out.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    Ok(match found.as_slice() {
        [group] => Some(FoundFleet::Asg {
            group: base_name(group),
        }),
        _ => None,
    })
}

/// Metric alarms whose dimensions (their own or their metric queries')
/// have a value in `names`, but not those a target tracking policy made for
/// itself (`TargetTracking-...-AlarmHigh/-AlarmLow`): they say when to
/// scale, not that something is wrong, and AlarmLow is in ALARM whenever the
/// load is low.
async fn alarms_naming(aws: &Aws, names: &BTreeSet<String>) -> Result<Vec<String>, PortError> {
    let cw = aws_sdk_cloudwatch::Client::new(&aws.sdk);
    let calls: &ApiCalls = &aws.calls;
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = aws_call!(
            calls,
            "DescribeAlarms",
            cw.describe_alarms().set_next_token(token.clone()).send()
        )?;
        for a in page.metric_alarms().iter().filter(|a| {
            !a.alarm_name()
                .unwrap_or_default()
                .starts_with("TargetTracking-")
        }) {
            let own = a.dimensions().iter();
            let queried = a
                .metrics()
                .iter()
                .filter_map(|m| m.metric_stat().and_then(|s| s.metric()))
                .flat_map(|m| m.dimensions().iter());
            if own
                .chain(queried)
                .any(|d| d.value().is_some_and(|v| names.contains(v)))
            {
                out.extend(a.alarm_name().map(String::from));
            }
        }
        token = page.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Create slot B's target group as a copy of blue's settings (protocol,
/// port, VPC, target type, health check), named [`Found::slot_b_name`]:
/// `teal init --create-target-group`, the only write of `init`.
pub async fn create_slot_b(aws: &Aws, found: &Found) -> Result<String, PortError> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&aws.sdk);
    let b = &found.blue;
    let out = aws_call!(
        aws.calls,
        "CreateTargetGroup",
        elb.create_target_group()
            .name(found.slot_b_name())
            .set_protocol(b.protocol().cloned())
            .set_protocol_version(b.protocol_version().map(String::from))
            .set_port(b.port())
            .set_vpc_id(b.vpc_id().map(String::from))
            .set_target_type(b.target_type().cloned())
            .set_ip_address_type(b.ip_address_type().cloned())
            .set_health_check_protocol(b.health_check_protocol().cloned())
            .set_health_check_port(b.health_check_port().map(String::from))
            .set_health_check_enabled(b.health_check_enabled())
            .set_health_check_path(b.health_check_path().map(String::from))
            .set_health_check_interval_seconds(b.health_check_interval_seconds())
            .set_health_check_timeout_seconds(b.health_check_timeout_seconds())
            .set_healthy_threshold_count(b.healthy_threshold_count())
            .set_unhealthy_threshold_count(b.unhealthy_threshold_count())
            .set_matcher(b.matcher().cloned())
            .send()
    )?;
    out.target_groups()
        .first()
        .and_then(|t| t.target_group_arn())
        .map(String::from)
        .ok_or_else(|| {
            PortError::new(
                "CreateTargetGroup",
                ErrorKind::Invalid,
                "no target group ARN in the answer",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::slot_b_name;

    #[test]
    fn slot_b_is_named_after_blue_within_elbs_32_characters() {
        assert_eq!(slot_b_name("checkout-a"), "checkout-b");
        assert_eq!(slot_b_name("checkout"), "checkout-b");
        let long = "x".repeat(32);
        assert_eq!(slot_b_name(&long).len(), 32);
        assert_eq!(slot_b_name(&"y-".repeat(16)).len(), 31, "no '--b'");
    }

    #[test]
    fn a_slot_teal_made_is_named_by_its_base() {
        assert_eq!(super::base_name("checkout-b"), "checkout");
        assert_eq!(super::base_name("checkout-a"), "checkout");
        assert_eq!(super::base_name("checkout"), "checkout");
        assert_eq!(super::base_name("-a"), "-a");
    }
}

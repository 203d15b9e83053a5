//! Elastic Load Balancing: the ALB router ([`alb`]) and the target health
//! both fleets read.

pub mod alb;

use crate::aws::ApiCalls;
use crate::ports::PortError;

/// Healthy targets in one target group.
pub async fn healthy_targets(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    calls: &ApiCalls,
    tg: &str,
) -> Result<u32, PortError> {
    use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;
    let out = crate::aws_call!(
        calls,
        "DescribeTargetHealth",
        elb.describe_target_health().target_group_arn(tg).send()
    )?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter(|d| {
            d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy)
        })
        .count() as u32)
}

//! The rolling strategy on Auto Scaling: an instance refresh of the group to
//! a new launch template version, under the refresh's own controls
//! (`MinHealthyPercentage`, checkpoints, auto rollback on the deployment's
//! alarms), with teal's gates polled throughout.
//!
//! Which refresh is this deployment's: the group's newest one started at or
//! after the deployment began, whose desired configuration is the target
//! version (the rollout) or the previous one (teal's own revert, when the
//! refresh could no longer be rolled back). Older refreshes are history.
//!
//! [`GroupRollout`] decides which group, from which version to which, and
//! keeps that in the group's tags; [`InstanceRefreshRollout`] drives the
//! refresh itself.
//!
//! moto does not implement instance refreshes: this adapter is tested
//! against an HTTP stand-in speaking the Auto Scaling query protocol to the
//! real SDK client (`tests` below).

pub mod group;

pub use group::GroupRollout;

use crate::aws::{ApiCalls, Aws};
use crate::aws_call;
use crate::model::{Millis, RolloutState};
use crate::ports::{ErrorKind, PortError};
use aws_sdk_autoscaling::types::{
    AlarmSpecification, DesiredConfiguration, InstanceRefresh, InstanceRefreshStatus,
    LaunchTemplateSpecification, RefreshPreferences, RefreshStrategy,
};
use std::sync::Arc;

/// How the refresh replaces instances: from the strategy and the gates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshPlan {
    /// Percent of the group kept in service (`MinHealthyPercentage`).
    pub min_healthy_percent: u8,
    /// Percent of the group the refresh may run at (`MaxHealthyPercentage`).
    pub max_healthy_percent: u16,
    /// Percent of the group replaced at each checkpoint, ascending, the last 100.
    pub checkpoints: Vec<u8>,
    /// Wait at each checkpoint before the last (`CheckpointDelay`): the strategy's bake.
    pub checkpoint_delay_s: i32,
    /// Alarms that make the refresh fail (and roll back) on their own.
    pub alarms: Vec<String>,
}

impl RefreshPlan {
    /// The refresh a rolling strategy asks for: its bounds, a checkpoint per
    /// `step` that waits `bake` (whole seconds, rounded up), and the gates'
    /// alarms.
    pub fn of(rolling: &crate::strategy::Rolling, alarms: &[String]) -> RefreshPlan {
        RefreshPlan {
            min_healthy_percent: rolling.min_healthy_percent,
            max_healthy_percent: rolling.max_percent,
            checkpoints: rolling.checkpoints(),
            checkpoint_delay_s: rolling.bake_ms.div_ceil(1000).min(i32::MAX as u64) as i32,
            // A refresh takes at most ten alarms; teal reads every gate itself.
            alarms: alarms.iter().take(MAX_REFRESH_ALARMS).cloned().collect(),
        }
    }
}

/// The most alarms an instance refresh's alarm specification takes.
pub const MAX_REFRESH_ALARMS: usize = 10;

/// The launch template the group runs: id and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Launch template id.
    pub id: String,
    /// Version number.
    pub version: String,
}

/// An Auto Scaling group updated in place by an instance refresh.
#[derive(Debug, Clone)]
pub struct InstanceRefreshRollout {
    client: aws_sdk_autoscaling::Client,
    calls: Arc<ApiCalls>,
    group: String,
    target: Template,
    previous: Template,
    plan: RefreshPlan,
    /// The deployment's start: refreshes before it are not this deployment's.
    since: Millis,
}

impl InstanceRefreshRollout {
    /// A rollout of `group` from `previous` to `target`, begun at `since`.
    pub fn new(
        aws: &Aws,
        group: String,
        previous: Template,
        target: Template,
        plan: RefreshPlan,
        since: Millis,
    ) -> InstanceRefreshRollout {
        InstanceRefreshRollout {
            client: aws_sdk_autoscaling::Client::new(&aws.sdk),
            calls: aws.calls.clone(),
            group,
            target,
            previous,
            plan,
            since,
        }
    }

    fn preferences(&self) -> RefreshPreferences {
        let mut p = RefreshPreferences::builder()
            .min_healthy_percentage(i32::from(self.plan.min_healthy_percent))
            .max_healthy_percentage(i32::from(self.plan.max_healthy_percent))
            // Instances already on the target are not replaced again.
            .skip_matching(true)
            .auto_rollback(true);
        if !self.plan.checkpoints.is_empty() {
            p = p
                .set_checkpoint_percentages(Some(
                    self.plan
                        .checkpoints
                        .iter()
                        .map(|c| i32::from(*c))
                        .collect(),
                ))
                .checkpoint_delay(self.plan.checkpoint_delay_s);
        }
        if !self.plan.alarms.is_empty() {
            p = p.alarm_specification(
                AlarmSpecification::builder()
                    .set_alarms(Some(self.plan.alarms.clone()))
                    .build(),
            );
        }
        p.build()
    }

    async fn start_refresh(
        &self,
        to: &Template,
        preferences: RefreshPreferences,
    ) -> Result<(), PortError> {
        aws_call!(
            self.calls,
            "StartInstanceRefresh",
            self.client
                .start_instance_refresh()
                .auto_scaling_group_name(&self.group)
                .strategy(RefreshStrategy::Rolling)
                .desired_configuration(
                    DesiredConfiguration::builder()
                        .launch_template(
                            LaunchTemplateSpecification::builder()
                                .launch_template_id(&to.id)
                                .version(&to.version)
                                .build(),
                        )
                        .build(),
                )
                .preferences(preferences)
                .send()
        )
        .map(|_| ())
    }

    /// This deployment's newest refresh, and whether it is the revert.
    async fn ours(&self) -> Result<Option<(InstanceRefresh, bool)>, PortError> {
        let out = aws_call!(
            self.calls,
            "DescribeInstanceRefreshes",
            self.client
                .describe_instance_refreshes()
                .auto_scaling_group_name(&self.group)
                .max_records(10)
                .send()
        )?;
        // Newest first, as the API returns them.
        for r in out.instance_refreshes() {
            let started = r
                .start_time()
                .map_or(0, |t| t.to_millis().unwrap_or(0).max(0) as Millis);
            if started + 1_000 < self.since {
                break;
            }
            let version = r
                .desired_configuration()
                .and_then(|d| d.launch_template())
                .and_then(|t| t.version());
            if version == Some(self.target.version.as_str()) {
                return Ok(Some((r.clone(), false)));
            }
            if version == Some(self.previous.version.as_str()) {
                return Ok(Some((r.clone(), true)));
            }
        }
        Ok(None)
    }
}

/// A refresh's status as a rollout state; `revert`: the refresh is teal's own
/// rollout of the previous version.
pub fn state_of(r: &InstanceRefresh, revert: bool) -> RolloutState {
    let detail = r.status_reason().unwrap_or_default().to_string();
    let percent = r.percentage_complete().map(|p| p.clamp(0, 100) as u8);
    use InstanceRefreshStatus as S;
    match (r.status(), revert) {
        (Some(S::Pending | S::InProgress | S::Baking | S::Cancelling), false) => {
            RolloutState::InProgress { percent, detail }
        }
        (Some(S::Successful), false) => RolloutState::Completed,
        (Some(S::RollbackInProgress), _)
        | (Some(S::Pending | S::InProgress | S::Baking | S::Cancelling), true) => {
            RolloutState::RollingBack { detail }
        }
        (Some(S::RollbackSuccessful), _) | (Some(S::Successful), true) => {
            RolloutState::RolledBack { detail }
        }
        (Some(S::Cancelled), false) => RolloutState::Stopped { detail },
        (Some(S::Failed), false) => RolloutState::Failed { detail },
        // The way back failed: the refresh's own rollback, or teal's refresh back.
        (Some(S::RollbackFailed), _) | (Some(S::Failed | S::Cancelled), true) => {
            RolloutState::RevertFailed { detail }
        }
        (other, _) => RolloutState::Failed {
            detail: format!("unknown refresh status {other:?}: {detail}"),
        },
    }
}

/// The refresh's side of a [`Rollout`](crate::ports::Rollout); [`GroupRollout`]
/// decides which refresh.
impl InstanceRefreshRollout {
    /// Where this deployment's refresh stands.
    pub async fn state(&self) -> Result<RolloutState, PortError> {
        Ok(match self.ours().await? {
            None => RolloutState::NotStarted,
            Some((r, revert)) => state_of(&r, revert),
        })
    }

    /// Start the refresh to the target (a retried start finds it running).
    pub async fn start(&self) -> Result<(), PortError> {
        match self.start_refresh(&self.target, self.preferences()).await {
            // A refresh already running: ours (a retried start that landed) is fine.
            Err(e) if e.message.starts_with("InstanceRefreshInProgress") => {
                match self.ours().await? {
                    Some((_, false)) => Ok(()),
                    _ => Err(PortError::new(
                        "StartInstanceRefresh",
                        ErrorKind::Invalid,
                        format!(
                            "another instance refresh of {} is running: {}",
                            self.group, e.message
                        ),
                    )),
                }
            }
            other => other,
        }
    }

    /// Roll the refresh back, or refresh back to the previous version once
    /// it is over.
    pub async fn revert(&self) -> Result<(), PortError> {
        let rolled = aws_call!(
            self.calls,
            "RollbackInstanceRefresh",
            self.client
                .rollback_instance_refresh()
                .auto_scaling_group_name(&self.group)
                .send()
        );
        match rolled {
            Ok(_) => Ok(()),
            // Finished (or not reversible): refresh back to the previous
            // version, every instance, with no checkpoints to wait at.
            Err(e) if e.kind == ErrorKind::Invalid || e.kind == ErrorKind::NotFound => {
                let back = RefreshPreferences::builder()
                    .min_healthy_percentage(i32::from(self.plan.min_healthy_percent))
                    .max_healthy_percentage(i32::from(self.plan.max_healthy_percent))
                    .skip_matching(true)
                    .build();
                self.start_refresh(&self.previous, back).await
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests;

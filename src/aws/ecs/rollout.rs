//! The rolling strategy on ECS: the service named in config is updated in
//! place to the new task definition with `minimumHealthyPercent` and
//! `maximumPercent` from the strategy and the deployment circuit breaker on
//! (with rollback), and teal waits on the service's deployments itself (no
//! ten-minute cap like the SDK's waiter), gates polled throughout.
//!
//! Level-triggered: the task definition the service runs says where it is.
//! It is the target when its `teal:revision` tag is the deployment's revision
//! (or it is the `--task-definition` given). The task definition it ran before
//! is kept in the service's `teal:previous-task-definition` tag, set before the
//! update, so that any process can put it back; it is never deregistered.
//!
//! Deployments created before the teal deployment began are history: a
//! failed rollout of the same revision by an earlier deployment is not this
//! one's.
//!
//! Done: the PRIMARY deployment of the target is COMPLETED. When the service
//! lists no deployment of its own task definition (never on ECS; moto 5.2.5
//! does not model deployments) running == desired stands in.

use super::{EcsFleet, GreenTask};
use crate::aws::tags;
use crate::aws_call;
use crate::model::{Green, Millis, RolloutState};
use crate::ports::{Checks, ErrorKind, PortError, Rollout};
use async_trait::async_trait;
use aws_sdk_ecs::types::{
    Deployment, DeploymentCircuitBreaker, DeploymentConfiguration, Service, ServiceField, Tag,
};
use std::collections::HashMap;
use std::sync::Mutex;

/// An ECS service updated in place.
pub struct EcsRollout {
    fleet: EcsFleet,
    min_healthy_percent: u8,
    max_percent: u16,
    /// Task definition ARN → its `teal:revision` tag (task definitions never change).
    revisions: Mutex<HashMap<String, Option<String>>>,
}

impl EcsRollout {
    /// A rolling update of `fleet`'s configured service to what it says green runs.
    pub fn new(fleet: EcsFleet, min_healthy_percent: u8, max_percent: u16) -> EcsRollout {
        EcsRollout {
            fleet,
            min_healthy_percent,
            max_percent,
            revisions: Mutex::new(HashMap::new()),
        }
    }

    async fn service(&self) -> Result<Service, PortError> {
        let out = aws_call!(
            self.fleet.calls,
            "DescribeServices",
            self.fleet
                .ecs
                .describe_services()
                .cluster(&self.fleet.cluster)
                .services(&self.fleet.base)
                .include(ServiceField::Tags)
                .send()
        )?;
        out.services()
            .iter()
            .find(|s| s.status() == Some("ACTIVE"))
            .cloned()
            .ok_or_else(|| {
                PortError::new(
                    "DescribeServices",
                    ErrorKind::NotFound,
                    format!(
                        "no active ECS service {:?} in cluster {:?}",
                        self.fleet.base, self.fleet.cluster
                    ),
                )
            })
    }

    /// Whether `task_definition` is the deployment's target.
    async fn is_target(&self, task_definition: &str, green: &Green) -> Result<bool, PortError> {
        let revision = green.revision.as_str();
        if let Some(GreenTask::TaskDefinition(td)) = GreenTask::parse(green.runs.as_deref()) {
            return Ok(task_definition == td || task_definition.ends_with(&format!("/{td}")));
        }
        let cached = self
            .revisions
            .lock()
            .expect("revisions")
            .get(task_definition)
            .cloned();
        let tag = match cached {
            Some(tag) => tag,
            None => {
                let out = aws_call!(
                    self.fleet.calls,
                    "DescribeTaskDefinition",
                    self.fleet
                        .ecs
                        .describe_task_definition()
                        .task_definition(task_definition)
                        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
                        .send()
                )?;
                let tag = out
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(tags::REVISION))
                    .and_then(|t| t.value())
                    .map(String::from);
                self.revisions
                    .lock()
                    .expect("revisions")
                    .insert(task_definition.to_string(), tag.clone());
                tag
            }
        };
        Ok(tag.as_deref() == Some(revision))
    }

    async fn update(&self, task_definition: &str) -> Result<(), PortError> {
        let config = DeploymentConfiguration::builder()
            .minimum_healthy_percent(i32::from(self.min_healthy_percent))
            .maximum_percent(i32::from(self.max_percent))
            .deployment_circuit_breaker(
                DeploymentCircuitBreaker::builder()
                    .enable(true)
                    .rollback(true)
                    .build(),
            )
            .build();
        aws_call!(
            self.fleet.calls,
            "UpdateService",
            self.fleet
                .ecs
                .update_service()
                .cluster(&self.fleet.cluster)
                .service(&self.fleet.base)
                .task_definition(task_definition)
                .deployment_configuration(config)
                .send()
        )
        .map(|_| ())
    }
}

fn primary(s: &Service) -> Option<&Deployment> {
    s.deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
}

fn percent(d: &Deployment) -> Option<u8> {
    let desired = d.desired_count();
    (desired > 0).then(|| ((d.running_count().max(0) * 100 / desired).min(100)) as u8)
}

#[async_trait]
impl Rollout for EcsRollout {
    async fn preflight(&self, green: &Green) -> (Checks, Option<String>) {
        let task = GreenTask::parse(green.runs.as_deref());
        let mut problems = match self.fleet.check(task.as_ref()).await {
            Ok(p) => p,
            Err(e) => return (Checks::unread(e), None),
        };
        let current = match self.service().await {
            Ok(s) => s.task_definition().map(String::from),
            Err(e) if e.is_transient() => return (Checks::unread(e), None),
            Err(e) => {
                if !problems.iter().any(|p| p.contains("fleet.service")) {
                    problems.push(format!("fleet.service: {}", e.message));
                }
                None
            }
        };
        (Checks::problems(problems), current)
    }

    async fn state(&self, green: &Green) -> Result<RolloutState, PortError> {
        let since = green.since;
        let s = self.service().await?;
        // Deployments begun before this one (by an earlier deployment of the
        // same revision, say) are history; a second of slack for the clocks.
        let recent = |d: &Deployment| {
            d.created_at()
                .and_then(|t| t.to_millis().ok())
                .is_none_or(|t| t.max(0) as Millis + 1_000 >= since)
        };
        let td = s.task_definition().unwrap_or_default().to_string();
        let deployment_of = |arn: &str| {
            s.deployments()
                .iter()
                .find(|d| d.task_definition() == Some(arn))
        };
        if self.is_target(&td, green).await? {
            return Ok(match deployment_of(&td) {
                Some(d) => match d.rollout_state() {
                    Some(aws_sdk_ecs::types::DeploymentRolloutState::Completed) => {
                        RolloutState::Completed
                    }
                    Some(aws_sdk_ecs::types::DeploymentRolloutState::Failed) => {
                        RolloutState::Failed {
                            detail: d.rollout_state_reason().unwrap_or_default().to_string(),
                        }
                    }
                    _ => RolloutState::InProgress {
                        percent: percent(d),
                        detail: d.rollout_state_reason().unwrap_or_default().to_string(),
                    },
                },
                // No deployment of it listed (moto): the counts stand in.
                None if s.running_count() >= s.desired_count() => RolloutState::Completed,
                None => RolloutState::InProgress {
                    percent: None,
                    detail: String::new(),
                },
            });
        }
        // On another task definition: ours failed and ECS is rolling back, or
        // has, or the update has not started.
        for d in s.deployments() {
            let arn = d.task_definition().unwrap_or_default();
            if arn != td
                && recent(d)
                && d.rollout_state() == Some(&aws_sdk_ecs::types::DeploymentRolloutState::Failed)
                && self.is_target(arn, green).await?
            {
                let detail = d.rollout_state_reason().unwrap_or_default().to_string();
                let settled = primary(&s).and_then(|p| p.rollout_state())
                    == Some(&aws_sdk_ecs::types::DeploymentRolloutState::Completed);
                return Ok(if settled {
                    RolloutState::RolledBack { detail }
                } else {
                    RolloutState::RollingBack { detail }
                });
            }
        }
        Ok(match primary(&s).filter(|p| recent(p)) {
            // Back on the previous task definition, and that deployment failed.
            Some(p)
                if p.rollout_state()
                    == Some(&aws_sdk_ecs::types::DeploymentRolloutState::Failed)
                    && s.tags().iter().any(|t| {
                        t.key() == Some(tags::PREVIOUS_TASK_DEFINITION)
                            && t.value() == Some(td.as_str())
                    }) =>
            {
                RolloutState::RevertFailed {
                    detail: p.rollout_state_reason().unwrap_or_default().to_string(),
                }
            }
            Some(p)
                if p.rollout_state()
                    == Some(&aws_sdk_ecs::types::DeploymentRolloutState::InProgress)
                    && s.deployments().len() > 1 =>
            {
                RolloutState::RollingBack {
                    detail: format!("{td} is rolling out"),
                }
            }
            _ => RolloutState::NotStarted,
        })
    }

    async fn start(&self, green: &Green) -> Result<(), PortError> {
        let revision = green.revision.as_str();
        let s = self.service().await?;
        let current = s.task_definition().unwrap_or_default().to_string();
        if self.is_target(&current, green).await? {
            return Ok(());
        }
        let target = match GreenTask::parse(green.runs.as_deref()) {
            Some(GreenTask::TaskDefinition(td)) => td,
            Some(GreenTask::Image(image)) => {
                let images = [(self.fleet.container.clone(), image.clone())].into();
                self.fleet.register_patched(&s, &images, revision).await?
            }
            Some(GreenTask::Images(images)) => {
                self.fleet.register_patched(&s, &images, revision).await?
            }
            None => {
                return Err(PortError::new(
                    "UpdateService",
                    ErrorKind::Invalid,
                    "no --image or --task-definition for the update",
                ))
            }
        };
        // Where to come back to, kept on the service before it changes.
        aws_call!(
            self.fleet.calls,
            "TagResource",
            self.fleet
                .ecs
                .tag_resource()
                .resource_arn(s.service_arn().unwrap_or_default())
                .tags(
                    Tag::builder()
                        .key(tags::PREVIOUS_TASK_DEFINITION)
                        .value(&current)
                        .build()
                )
                .send()
        )?;
        self.update(&target).await
    }

    async fn revert(&self) -> Result<(), PortError> {
        let s = self.service().await?;
        let previous = s
            .tags()
            .iter()
            .find(|t| t.key() == Some(tags::PREVIOUS_TASK_DEFINITION))
            .and_then(|t| t.value())
            .map(String::from)
            .ok_or_else(|| {
                PortError::new(
                    "UpdateService",
                    ErrorKind::Invalid,
                    format!(
                        "service {} has no {} tag: teal does not know what to go back to",
                        self.fleet.base,
                        tags::PREVIOUS_TASK_DEFINITION
                    ),
                )
            })?;
        if s.task_definition() == Some(previous.as_str()) {
            return Ok(());
        }
        self.update(&previous).await
    }
}

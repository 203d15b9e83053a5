//! The ECS fleet: one service per slot, attached to the slot's target group.
//!
//! Blue is the service named in config (or `NAME-a` / `NAME-b`, the names
//! teal gives the services it creates), whichever is attached to the slot's
//! target group. Green is a new service cloned from blue: network
//! configuration, launch type or capacity providers, platform version, load
//! balancer container and port, tags, and blue's *current* desired count. Its
//! task definition is registered from `--image` (blue's, with the configured
//! container's image replaced) or given with `--task-definition`. Blue's
//! Application Auto Scaling target and policies are copied, so green scales
//! like blue from the first minute.
//!
//! Healthy: running tasks and healthy targets in the slot's target group, the
//! lesser of the two. Remove: scale to 0, then delete.
//!
//! With `fleet.slots = "existing"` both services, `NAME-a` and `NAME-b`, are
//! the user's (declared in Terraform or CloudFormation) and teal never creates
//! or deletes one. A slot whose service wants no tasks is *parked*, which the
//! engine sees as no fleet: provisioning green tags the parked service with
//! the revision, then updates it to green's task definition at blue's desired
//! count and gives it blue's scaling bounds and policies; removing a slot
//! parks it: its scalable target's bounds go to 0/0 (kept, not deregistered,
//! so the next `terraform apply` has nothing to recreate and Application Auto
//! Scaling cannot scale it back up), then its desired count to 0.

use crate::aws::{ApiCalls, Aws};
pub mod rollout;

use crate::aws::tags;
use crate::aws_call;
use crate::config::Slots;
use crate::model::{FleetStatus, Green, Slot};
use crate::ports::{ErrorKind, Fleet, PortError};
use async_trait::async_trait;
use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_sdk_ecs::types::{LoadBalancer, Service, ServiceField, Tag, TaskDefinition};
use std::sync::Arc;

/// The problem, if blue's task definition lacks any of `names`.
fn missing_containers(
    out: &aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput,
    names: &[String],
) -> Option<String> {
    let td = out.task_definition()?;
    let have: Vec<&str> = td
        .container_definitions()
        .iter()
        .filter_map(|c| c.name())
        .collect();
    let missing: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !have.contains(n))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "green's image: blue's task definition {} has no container {} (it has {})",
            td.task_definition_arn().unwrap_or("?"),
            missing.join(", "),
            have.join(", ")
        )
    })
}

/// What green runs: an image patched into blue's task definition, or a task
/// definition given whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GreenTask {
    /// Replace the configured container's image in blue's task definition.
    Image(String),
    /// Replace these containers' images (name → image URI) in blue's task
    /// definition: the ECS deploy action's `imagedefinitions.json`.
    Images(std::collections::BTreeMap<String, String>),
    /// Use this task definition (ARN or family:revision) as it is.
    TaskDefinition(String),
}

impl GreenTask {
    /// How the record keeps it: `image=URI`, `images=NAME=URI,...` or
    /// `task-definition=ARN`.
    pub fn spec(&self) -> String {
        match self {
            GreenTask::Image(i) => format!("image={i}"),
            GreenTask::Images(m) => format!(
                "images={}",
                m.iter()
                    .map(|(name, uri)| format!("{name}={uri}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            GreenTask::TaskDefinition(t) => format!("task-definition={t}"),
        }
    }

    /// The inverse of [`GreenTask::spec`]; `None` for what no ECS fleet runs
    /// (nothing given, or an Auto Scaling fleet's spec).
    pub fn parse(spec: Option<&str>) -> Option<GreenTask> {
        let (kind, value) = spec?.split_once('=')?;
        let value = value.to_string();
        match kind {
            "image" => Some(GreenTask::Image(value)),
            "images" => Some(GreenTask::Images(
                value
                    .split(',')
                    .filter_map(|e| e.split_once('='))
                    .map(|(n, u)| (n.to_string(), u.to_string()))
                    .collect(),
            )),
            "task-definition" => Some(GreenTask::TaskDefinition(value)),
            _ => None,
        }
    }
}

/// The ACTIVE services of `names` (at most ten) in `cluster`, in one call.
async fn describe_services(
    fleet: &EcsFleet,
    cluster: &str,
    names: Vec<String>,
) -> Result<Vec<Service>, PortError> {
    let out = aws_call!(
        fleet.calls,
        "DescribeServices",
        fleet
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(names.clone()))
            .include(ServiceField::Tags)
            .send()
    )?;
    Ok(out
        .services()
        .iter()
        .filter(|s| s.status() == Some("ACTIVE"))
        .cloned()
        .collect())
}

/// `tags` with teal's revision tag set to `revision`.
fn with_revision(tags: &[Tag], revision: &str) -> Vec<Tag> {
    tags.iter()
        .filter(|t| t.key() != Some(tags::REVISION))
        .cloned()
        .chain([Tag::builder().key(tags::REVISION).value(revision).build()])
        .collect()
}

/// The revision teal's tag says runs there; missing means unknown (blue
/// before its first deployment, or an answer that raced the tagging).
fn revision_of(x: &Service) -> Option<&str> {
    x.tags()
        .iter()
        .find(|t| t.key() == Some(tags::REVISION))
        .and_then(|t| t.value())
}

/// The ECS fleet.
#[derive(Debug, Clone)]
pub struct EcsFleet {
    pub(crate) ecs: aws_sdk_ecs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    scaling: aws_sdk_applicationautoscaling::Client,
    pub(crate) calls: Arc<ApiCalls>,
    pub(crate) cluster: String,
    pub(crate) base: String,
    pub(crate) container: String,
    container_port: u16,
    target_groups: [String; 2],
    slots: Slots,
}

impl EcsFleet {
    /// A fleet in `cluster`, services named from `base`, attached by
    /// `container:container_port` to `target_groups` (slot A, slot B).
    pub fn new(
        aws: &Aws,
        cluster: String,
        base: String,
        container: String,
        container_port: u16,
        target_groups: [String; 2],
    ) -> EcsFleet {
        EcsFleet {
            ecs: aws_sdk_ecs::Client::new(&aws.sdk),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&aws.sdk),
            scaling: aws_sdk_applicationautoscaling::Client::new(&aws.sdk),
            calls: aws.calls.clone(),
            cluster,
            base,
            container,
            container_port,
            target_groups,
            slots: Slots::Created,
        }
    }

    /// Whose services the slots are: teal's to create and delete (the
    /// default), or the user's, existing beforehand.
    pub fn with_slots(mut self, slots: Slots) -> EcsFleet {
        self.slots = slots;
        self
    }

    fn candidates(&self) -> Vec<String> {
        if self.slots == Slots::Existing {
            return vec![self.name_for(Slot::A), self.name_for(Slot::B)];
        }
        let mut names = vec![
            self.base.clone(),
            format!("{}-a", self.base),
            format!("{}-b", self.base),
        ];
        names.dedup();
        names
    }

    fn name_for(&self, slot: Slot) -> String {
        format!("{}-{slot}", self.base)
    }

    fn cluster_name(&self) -> &str {
        self.cluster.rsplit('/').next().unwrap_or(&self.cluster)
    }

    fn scaling_id(&self, service: &str) -> String {
        format!("service/{}/{service}", self.cluster_name())
    }

    /// The ACTIVE services among the candidates, in one call.
    async fn services(&self) -> Result<Vec<Service>, PortError> {
        describe_services(self, &self.cluster, self.candidates()).await
    }

    /// The one of `services` in the slot: attached to the slot's target
    /// group and, with existing slots, not parked.
    fn in_slot(&self, services: &[Service], slot: Slot) -> Option<Service> {
        self.attached(services, slot)
            .filter(|s| self.slots == Slots::Created || s.desired_count() > 0)
    }

    /// The one of `services` attached to the slot's target group, parked or not.
    fn attached(&self, services: &[Service], slot: Slot) -> Option<Service> {
        let tg = &self.target_groups[slot.index()];
        services
            .iter()
            .find(|s| {
                s.load_balancers()
                    .iter()
                    .any(|lb| lb.target_group_arn() == Some(tg))
            })
            .cloned()
    }

    /// The ACTIVE service attached to the slot's target group, if any.
    async fn service_in(&self, slot: Slot) -> Result<Option<Service>, PortError> {
        Ok(self.in_slot(&self.services().await?, slot))
    }

    /// The status of the service in `slot`, if it has one.
    async fn status_of(
        &self,
        service: Option<Service>,
        slot: Slot,
    ) -> Result<FleetStatus, PortError> {
        let Some(s) = service else {
            return Ok(FleetStatus::absent());
        };
        // Only teal's own tag says which revision runs: a missing tag (blue
        // before its first deployment, or an answer that raced the tagging)
        // means unknown, never "another revision".
        let revision = revision_of(&s).map(String::from);
        let running = s.running_count().max(0) as u32;
        let healthy = running.min(
            crate::aws::elb::healthy_targets(
                &self.elb,
                &self.calls,
                &self.target_groups[slot.index()],
            )
            .await?,
        );
        Ok(FleetStatus {
            exists: true,
            revision,
            desired: s.desired_count().max(0) as u32,
            healthy,
            name: s.service_name().map(String::from),
        })
    }

    /// Check, read-only, that the cluster and a blue service exist; `Err`:
    /// a read failed for a passing reason, the checks are not done.
    pub(crate) async fn check(&self, green: Option<&GreenTask>) -> Result<Vec<String>, PortError> {
        let mut problems = Vec::new();
        match aws_call!(
            self.calls,
            "DescribeClusters",
            self.ecs.describe_clusters().clusters(&self.cluster).send()
        ) {
            Ok(out) if out.clusters().iter().any(|c| c.status() == Some("ACTIVE")) => {}
            Ok(_) => problems.push(format!(
                "fleet.cluster: ECS cluster {:?} does not exist or is not active",
                self.cluster
            )),
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => problems.push(format!(
                "fleet.cluster: ECS cluster {:?} cannot be read ({})",
                self.cluster, e.message
            )),
        }
        let mut blue = None;
        if problems.is_empty() && self.slots == Slots::Existing {
            problems.extend(self.check_existing().await?);
        }
        if problems.is_empty() {
            let mut found = false;
            for slot in Slot::BOTH {
                match self.service_in(slot).await {
                    Ok(Some(s)) => {
                        found = true;
                        blue = Some(s);
                    }
                    Ok(None) => {}
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => problems.push(format!(
                        "fleet.service: cannot read services ({})",
                        e.message
                    )),
                }
            }
            if !found && problems.is_empty() {
                problems.push(match self.slots {
                    Slots::Existing => format!(
                        "fleet.slots = \"existing\": both {} and {} are parked at 0 tasks; blue must \
                         run: give the live one its tasks in your infrastructure code",
                        self.name_for(Slot::A),
                        self.name_for(Slot::B)
                    ),
                    Slots::Created => format!(
                        "fleet.service: no active ECS service {:?} (or {}) in cluster {:?} is attached to either target group",
                        self.base,
                        self.candidates()[1..].join(", "),
                        self.cluster
                    ),
                });
            }
        }
        if green.is_none() {
            problems.push(
                "what should green run? give --image IMAGE or --task-definition ARN".to_string(),
            );
        }
        // Green's images go into containers of blue's task definition: each
        // must exist, or the deployment would fail after it began.
        if let (Some(blue), Some(names)) = (&blue, self.patched_containers(green)) {
            match self.blue_task_definition(blue).await {
                Ok(td) => problems.extend(missing_containers(&td, &names)),
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => problems.push(format!(
                    "fleet.service: blue's task definition cannot be read ({})",
                    e.message
                )),
            }
        }
        // A task definition given as it is must be registered, and hold the
        // container the target group forwards to.
        if let Some(GreenTask::TaskDefinition(td)) = green {
            let out = aws_call!(
                self.calls,
                "DescribeTaskDefinition",
                self.ecs
                    .describe_task_definition()
                    .task_definition(td)
                    .send()
            );
            match out {
                Ok(out) if out.task_definition().is_some() => {
                    if let Some(missing) =
                        missing_containers(&out, std::slice::from_ref(&self.container))
                    {
                        problems.push(format!(
                            "--task-definition {td}: {} (fleet.container)",
                            missing.replace(
                                "green's image: blue's task definition",
                                "task definition"
                            )
                        ));
                    }
                }
                Ok(_) => problems.push(format!(
                    "--task-definition {td}: ECS has no such task definition"
                )),
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => problems.push(format!(
                    "--task-definition {td}: ECS has no such task definition registered ({})",
                    e.message
                )),
            }
        }
        Ok(problems)
    }

    /// With existing slots: both services exist, each attached to its own
    /// slot's target group (what `in_slot` tells slots by).
    async fn check_existing(&self) -> Result<Vec<String>, PortError> {
        let services = match self.services().await {
            Ok(s) => s,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                return Ok(vec![format!(
                    "fleet.service: cannot read services ({})",
                    e.message
                )])
            }
        };
        let mut problems = Vec::new();
        for slot in Slot::BOTH {
            let name = self.name_for(slot);
            let Some(s) = services
                .iter()
                .find(|s| s.service_name() == Some(name.as_str()))
            else {
                problems.push(format!(
                    "fleet.slots = \"existing\": no active ECS service {name:?} in cluster {:?}; \
                     declare both {} and {} in your infrastructure code (the idle one at desired \
                     count 0)",
                    self.cluster,
                    self.name_for(Slot::A),
                    self.name_for(Slot::B)
                ));
                continue;
            };
            if self.attached(std::slice::from_ref(s), slot).is_none() {
                problems.push(format!(
                    "fleet.slots = \"existing\": service {name:?} is not attached to slot {slot}'s \
                     target group {} (router.target_groups[{}])",
                    self.target_groups[slot.index()],
                    slot.index()
                ));
            }
        }
        Ok(problems)
    }

    /// The containers whose image green replaces, if it patches blue's task definition.
    fn patched_containers(&self, green: Option<&GreenTask>) -> Option<Vec<String>> {
        match green {
            Some(GreenTask::Image(_)) => Some(vec![self.container.clone()]),
            Some(GreenTask::Images(m)) => Some(m.keys().cloned().collect()),
            _ => None,
        }
    }

    pub(crate) async fn blue_task_definition(
        &self,
        blue: &Service,
    ) -> Result<
        aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput,
        PortError,
    > {
        let blue_td = blue.task_definition().unwrap_or_default();
        aws_call!(
            self.calls,
            "DescribeTaskDefinition",
            self.ecs
                .describe_task_definition()
                .task_definition(blue_td)
                .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
                .send()
        )
    }

    /// Register green's task definition: blue's, with the container's image replaced.
    pub(crate) async fn register_patched(
        &self,
        blue: &Service,
        images: &std::collections::BTreeMap<String, String>,
        revision: &str,
    ) -> Result<String, PortError> {
        let blue_td = blue.task_definition().unwrap_or_default();
        let out = self.blue_task_definition(blue).await?;
        let td: &TaskDefinition = out.task_definition().ok_or_else(|| {
            PortError::new(
                "DescribeTaskDefinition",
                ErrorKind::NotFound,
                format!("{blue_td} not found"),
            )
        })?;
        let names: Vec<String> = images.keys().cloned().collect();
        if let Some(problem) = missing_containers(&out, &names) {
            return Err(PortError::new(
                "RegisterTaskDefinition",
                ErrorKind::Invalid,
                problem,
            ));
        }
        let mut containers = td.container_definitions().to_vec();
        for c in &mut containers {
            if let Some(image) = c.name().and_then(|n| images.get(n)) {
                c.image = Some(image.clone());
            }
        }
        let tags = with_revision(out.tags(), revision);
        let reg = aws_call!(
            self.calls,
            "RegisterTaskDefinition",
            self.ecs
                .register_task_definition()
                .set_family(td.family().map(String::from))
                .set_task_role_arn(td.task_role_arn().map(String::from))
                .set_execution_role_arn(td.execution_role_arn().map(String::from))
                .set_network_mode(td.network_mode().cloned())
                .set_container_definitions(Some(containers))
                .set_volumes(Some(td.volumes().to_vec()))
                .set_placement_constraints(Some(td.placement_constraints().to_vec()))
                .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
                .set_cpu(td.cpu().map(String::from))
                .set_memory(td.memory().map(String::from))
                .set_pid_mode(td.pid_mode().cloned())
                .set_ipc_mode(td.ipc_mode().cloned())
                .set_proxy_configuration(td.proxy_configuration().cloned())
                .set_ephemeral_storage(td.ephemeral_storage().cloned())
                .set_runtime_platform(td.runtime_platform().cloned())
                .set_tags(Some(tags))
                .send()
        )?;
        reg.task_definition()
            .and_then(|t| t.task_definition_arn())
            .map(String::from)
            .ok_or_else(|| {
                PortError::new(
                    "RegisterTaskDefinition",
                    ErrorKind::Invalid,
                    "no task definition ARN in the answer",
                )
            })
    }

    /// Copy blue's scalable target and scaling policies to green.
    async fn copy_scaling(&self, blue: &str, green: &str) -> Result<(), PortError> {
        let (blue_id, green_id) = (self.scaling_id(blue), self.scaling_id(green));
        let targets = aws_call!(
            self.calls,
            "DescribeScalableTargets",
            self.scaling
                .describe_scalable_targets()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_ids(&blue_id)
                .send()
        )?;
        let Some(t) = targets
            .scalable_targets()
            .iter()
            .find(|t| t.scalable_dimension() == &ScalableDimension::EcsServiceDesiredCount)
        else {
            return Ok(());
        };
        aws_call!(
            self.calls,
            "RegisterScalableTarget",
            self.scaling
                .register_scalable_target()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(&green_id)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .min_capacity(t.min_capacity())
                .max_capacity(t.max_capacity())
                .send()
        )?;
        let policies = aws_call!(
            self.calls,
            "DescribeScalingPolicies",
            self.scaling
                .describe_scaling_policies()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(&blue_id)
                .send()
        )?;
        // Compare ids exactly: some implementations filter by substring.
        for p in policies
            .scaling_policies()
            .iter()
            .filter(|p| p.resource_id() == blue_id)
        {
            aws_call!(
                self.calls,
                "PutScalingPolicy",
                self.scaling
                    .put_scaling_policy()
                    .policy_name(p.policy_name())
                    .service_namespace(ServiceNamespace::Ecs)
                    .resource_id(&green_id)
                    .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                    .policy_type(p.policy_type().clone())
                    .set_target_tracking_scaling_policy_configuration(
                        p.target_tracking_scaling_policy_configuration().cloned()
                    )
                    .set_step_scaling_policy_configuration(
                        p.step_scaling_policy_configuration().cloned()
                    )
                    .send()
            )?;
        }
        Ok(())
    }
}

#[async_trait]
impl Fleet for EcsFleet {
    async fn preflight(&self, _plan: &crate::engine::Plan, green: &Green) -> crate::ports::Checks {
        let task = GreenTask::parse(green.runs.as_deref());
        match self.check(task.as_ref()).await {
            Ok(problems) => crate::ports::Checks::problems(problems),
            Err(e) => crate::ports::Checks::unread(e),
        }
    }

    async fn status(&self, slot: Slot) -> Result<FleetStatus, PortError> {
        self.status_of(self.service_in(slot).await?, slot).await
    }

    async fn statuses(&self) -> Result<[FleetStatus; 2], PortError> {
        let services = self.services().await?;
        Ok([
            self.status_of(self.in_slot(&services, Slot::A), Slot::A)
                .await?,
            self.status_of(self.in_slot(&services, Slot::B), Slot::B)
                .await?,
        ])
    }

    async fn provision(&self, slot: Slot, green: &Green, desired: u32) -> Result<(), PortError> {
        match self.slots {
            Slots::Created => self.create(slot, green, desired).await,
            Slots::Existing => self.unpark(slot, green, desired).await,
        }
    }

    async fn remove(&self, slot: Slot) -> Result<(), PortError> {
        match self.slots {
            Slots::Created => self.delete(slot).await,
            Slots::Existing => self.park(slot).await,
        }
    }
}

impl EcsFleet {
    /// Create green in `slot`, cloned from blue (idempotent).
    async fn create(&self, slot: Slot, green: &Green, desired: u32) -> Result<(), PortError> {
        let revision = green.revision.as_str();
        if let Some(existing) = self.service_in(slot).await? {
            let tagged = revision_of(&existing);
            let name = existing.service_name().unwrap_or("?");
            let ours = name == self.name_for(slot);
            return crate::aws::existing_is_ours(
                "CreateService",
                slot,
                &format!("service {name}"),
                tagged,
                ours,
                revision,
            );
        }
        let blue = self.blue_of(slot, "CreateService").await?;
        let task_definition = self
            .green_task_definition(&blue, green, "CreateService")
            .await?;
        let tg = &self.target_groups[slot.index()];
        let mut lbs: Vec<LoadBalancer> = blue
            .load_balancers()
            .iter()
            .filter(|lb| {
                !self
                    .target_groups
                    .iter()
                    .any(|t| lb.target_group_arn() == Some(t.as_str()))
            })
            .cloned()
            .collect();
        lbs.push(
            LoadBalancer::builder()
                .target_group_arn(tg)
                .container_name(&self.container)
                .container_port(i32::from(self.container_port))
                .build(),
        );
        let tags = with_revision(blue.tags(), revision);
        let name = self.name_for(slot);
        aws_call!(
            self.calls,
            "CreateService",
            self.ecs
                .create_service()
                .cluster(&self.cluster)
                .service_name(&name)
                .task_definition(task_definition)
                .desired_count(desired as i32)
                .set_load_balancers(Some(lbs))
                .set_launch_type(blue.launch_type().cloned())
                .set_capacity_provider_strategy(
                    Some(blue.capacity_provider_strategy().to_vec()).filter(|v| !v.is_empty())
                )
                .set_platform_version(blue.platform_version().map(String::from))
                .set_network_configuration(blue.network_configuration().cloned())
                .set_health_check_grace_period_seconds(blue.health_check_grace_period_seconds())
                .set_deployment_configuration(blue.deployment_configuration().cloned())
                .set_placement_constraints(
                    Some(blue.placement_constraints().to_vec()).filter(|v| !v.is_empty())
                )
                .set_placement_strategy(
                    Some(blue.placement_strategy().to_vec()).filter(|v| !v.is_empty())
                )
                .set_propagate_tags(blue.propagate_tags().cloned())
                .enable_ecs_managed_tags(blue.enable_ecs_managed_tags())
                .enable_execute_command(blue.enable_execute_command())
                .set_tags(Some(tags))
                .send()
        )?;
        self.copy_scaling(blue.service_name().unwrap_or(&self.base), &name)
            .await
    }

    /// Blue: the live service in the slot other than `slot`.
    async fn blue_of(&self, slot: Slot, op: &str) -> Result<Service, PortError> {
        self.service_in(slot.other()).await?.ok_or_else(|| {
            PortError::new(
                op,
                ErrorKind::NotFound,
                format!("no blue service in slot {} to clone", slot.other()),
            )
        })
    }

    /// Green's task definition: given, or registered from blue's.
    async fn green_task_definition(
        &self,
        blue: &Service,
        green: &Green,
        op: &str,
    ) -> Result<String, PortError> {
        let revision = green.revision.as_str();
        match GreenTask::parse(green.runs.as_deref()) {
            Some(GreenTask::TaskDefinition(td)) => Ok(td),
            Some(GreenTask::Image(image)) => {
                let images = [(self.container.clone(), image.clone())].into();
                self.register_patched(blue, &images, revision).await
            }
            Some(GreenTask::Images(images)) => self.register_patched(blue, &images, revision).await,
            None => Err(PortError::new(
                op,
                ErrorKind::Invalid,
                "no --image or --task-definition for green",
            )),
        }
    }

    /// Existing slots: bring the parked service in `slot` up as green
    /// (idempotent). The revision tag goes first, so that a retry after a
    /// partial start finds its own service, never "another revision".
    async fn unpark(&self, slot: Slot, green: &Green, desired: u32) -> Result<(), PortError> {
        let services = self.services().await?;
        if let Some(live) = self.in_slot(&services, slot) {
            let tagged = revision_of(&live);
            return crate::aws::existing_is_ours(
                "UpdateService",
                slot,
                &format!("service {}", live.service_name().unwrap_or("?")),
                tagged,
                true,
                &green.revision,
            );
        }
        let parked = self.attached(&services, slot).ok_or_else(|| {
            PortError::new(
                "UpdateService",
                ErrorKind::NotFound,
                format!(
                    "service {} (slot {slot}, fleet.slots = \"existing\") is gone",
                    self.name_for(slot)
                ),
            )
        })?;
        let blue = self.blue_of(slot, "UpdateService").await?;
        let task_definition = self
            .green_task_definition(&blue, green, "UpdateService")
            .await?;
        let name = parked.service_name().unwrap_or_default().to_string();
        aws_call!(
            self.calls,
            "TagResource",
            self.ecs
                .tag_resource()
                .resource_arn(parked.service_arn().unwrap_or_default())
                .tags(
                    Tag::builder()
                        .key(tags::REVISION)
                        .value(green.revision.as_str())
                        .build()
                )
                .send()
        )?;
        aws_call!(
            self.calls,
            "UpdateService",
            self.ecs
                .update_service()
                .cluster(&self.cluster)
                .service(&name)
                .task_definition(task_definition)
                .desired_count(desired as i32)
                .send()
        )?;
        self.copy_scaling(blue.service_name().unwrap_or(&self.base), &name)
            .await
    }

    /// Existing slots: park the service in `slot` (idempotent): its scaling
    /// bounds to 0/0 first, or Application Auto Scaling would scale it back
    /// up to its minimum, then its desired count to 0.
    async fn park(&self, slot: Slot) -> Result<(), PortError> {
        let Some(s) = self.service_in(slot).await? else {
            return Ok(());
        };
        let name = s.service_name().unwrap_or_default().to_string();
        let id = self.scaling_id(&name);
        let targets = aws_call!(
            self.calls,
            "DescribeScalableTargets",
            self.scaling
                .describe_scalable_targets()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_ids(&id)
                .send()
        )?;
        if targets
            .scalable_targets()
            .iter()
            .any(|t| t.resource_id() == id)
        {
            aws_call!(
                self.calls,
                "RegisterScalableTarget",
                self.scaling
                    .register_scalable_target()
                    .service_namespace(ServiceNamespace::Ecs)
                    .resource_id(&id)
                    .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                    .min_capacity(0)
                    .max_capacity(0)
                    .send()
            )?;
        }
        aws_call!(
            self.calls,
            "UpdateService",
            self.ecs
                .update_service()
                .cluster(&self.cluster)
                .service(&name)
                .desired_count(0)
                .send()
        )?;
        Ok(())
    }

    /// Scale the service in `slot` to zero and delete it (idempotent).
    async fn delete(&self, slot: Slot) -> Result<(), PortError> {
        let Some(s) = self.service_in(slot).await? else {
            return Ok(());
        };
        let name = s.service_name().unwrap_or_default().to_string();
        // Scaling policies would fight the scale-down: drop the scalable target first.
        let dereg = aws_call!(
            self.calls,
            "DeregisterScalableTarget",
            self.scaling
                .deregister_scalable_target()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(self.scaling_id(&name))
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .send()
        );
        match dereg {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound || e.message.contains("No scalable target") => {
            }
            Err(e) if e.kind == ErrorKind::Invalid && e.message.contains("ObjectNotFound") => {}
            Err(e) => return Err(e),
        }
        aws_call!(
            self.calls,
            "UpdateService",
            self.ecs
                .update_service()
                .cluster(&self.cluster)
                .service(&name)
                .desired_count(0)
                .send()
        )?;
        aws_call!(
            self.calls,
            "DeleteService",
            self.ecs
                .delete_service()
                .cluster(&self.cluster)
                .service(&name)
                .force(true)
                .send()
        )?;
        Ok(())
    }
}

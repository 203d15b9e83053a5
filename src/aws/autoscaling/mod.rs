//! The Auto Scaling fleet: one group per slot, attached to the slot's target
//! group.
//!
//! Blue is the group named in config (or `NAME-a` / `NAME-b`, the names teal
//! gives the groups it creates), whichever is attached to the slot's target
//! group. Green is cloned from blue (subnets, min/max, health check type and
//! grace period, tags) at blue's *current* desired capacity, on a new launch
//! template version: `--launch-template-version N` of blue's template, or one
//! created from blue's with `--ami`. Blue's scaling policies are copied.
//!
//! Healthy: InService instances and healthy targets in the slot's target
//! group, the lesser of the two. Remove: detach from the target group (so
//! connections drain), then delete with its instances.
//!
//! With `fleet.slots = "existing"` both groups, `NAME-a` and `NAME-b`, are the
//! user's (declared in Terraform or CloudFormation, each attached to its
//! slot's target group) and teal never creates, deletes or detaches one. A
//! group that wants no instances is *parked*, which the engine sees as no
//! fleet. Provisioning green tags the parked group with the revision, then
//! sets green's launch template version and blue's bounds at blue's desired
//! capacity, and copies blue's policies; removing a slot parks it with
//! min = max = desired = 0 (so no policy can scale it back up; instances
//! leave the target group through its deregistration delay as in any
//! scale-in).

use crate::aws::{ApiCalls, Aws};
pub mod refresh;

use crate::aws::tags;
use crate::aws_call;
use crate::config::Slots;
use crate::model::{FleetStatus, Green, Slot};
use crate::ports::{ErrorKind, Fleet, PortError};
use async_trait::async_trait;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, LaunchTemplateSpecification, LifecycleState, Tag,
};
use std::sync::Arc;

/// What green runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GreenTemplate {
    /// This version of blue's launch template.
    Version(String),
    /// A new version of blue's launch template with this AMI.
    Ami(String),
}

impl GreenTemplate {
    /// How the record keeps it: `launch-template-version=N` or `ami=ID`.
    pub fn spec(&self) -> String {
        match self {
            GreenTemplate::Version(v) => format!("launch-template-version={v}"),
            GreenTemplate::Ami(a) => format!("ami={a}"),
        }
    }

    /// The inverse of [`GreenTemplate::spec`]; `None` for what no Auto
    /// Scaling fleet runs (nothing given, or an ECS fleet's spec).
    pub fn parse(spec: Option<&str>) -> Option<GreenTemplate> {
        match spec?.split_once('=')? {
            ("launch-template-version", v) => Some(GreenTemplate::Version(v.to_string())),
            ("ami", a) => Some(GreenTemplate::Ami(a.to_string())),
            _ => None,
        }
    }
}

/// The revision teal's tag says runs there; missing means unknown (blue
/// before its first deployment, or an answer that raced the tagging).
fn revision_of(x: &AutoScalingGroup) -> Option<&str> {
    x.tags()
        .iter()
        .find(|t| t.key() == Some(tags::REVISION))
        .and_then(|t| t.value())
}

/// The Auto Scaling fleet.
#[derive(Debug, Clone)]
pub struct AsgFleet {
    pub(crate) asg: aws_sdk_autoscaling::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) calls: Arc<ApiCalls>,
    pub(crate) base: String,
    target_groups: [String; 2],
    slots: Slots,
}

impl AsgFleet {
    /// A fleet of groups named from `base`, attached to `target_groups` (A, B).
    pub fn new(aws: &Aws, base: String, target_groups: [String; 2]) -> AsgFleet {
        AsgFleet {
            asg: aws_sdk_autoscaling::Client::new(&aws.sdk),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&aws.sdk),
            ec2: aws_sdk_ec2::Client::new(&aws.sdk),
            calls: aws.calls.clone(),
            base,
            target_groups,
            slots: Slots::Created,
        }
    }

    /// Whose groups the slots are: teal's to create and delete (the
    /// default), or the user's, existing beforehand.
    pub fn with_slots(mut self, slots: Slots) -> AsgFleet {
        self.slots = slots;
        self
    }

    fn name_for(&self, slot: Slot) -> String {
        format!("{}-{slot}", self.base)
    }

    /// The names a group of this fleet can have.
    pub(crate) fn candidates(&self) -> Vec<String> {
        if self.slots == Slots::Existing {
            return vec![self.name_for(Slot::A), self.name_for(Slot::B)];
        }
        vec![
            self.base.clone(),
            format!("{}-a", self.base),
            format!("{}-b", self.base),
        ]
    }

    /// The fleet's groups that exist and are not being deleted.
    pub(crate) async fn groups(&self) -> Result<Vec<AutoScalingGroup>, PortError> {
        let out = aws_call!(
            self.calls,
            "DescribeAutoScalingGroups",
            self.asg
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(self.candidates()))
                .send()
        )?;
        // A group being deleted is on its way out of the slot.
        Ok(out
            .auto_scaling_groups()
            .iter()
            .filter(|g| g.status.is_none())
            .cloned()
            .collect())
    }

    /// The one of `groups` in the slot: attached to the slot's target group
    /// and, with existing slots, not parked.
    fn in_slot(&self, groups: &[AutoScalingGroup], slot: Slot) -> Option<AutoScalingGroup> {
        self.attached(groups, slot)
            .filter(|g| self.slots == Slots::Created || g.desired_capacity().unwrap_or(0) > 0)
    }

    /// The one of `groups` attached to the slot's target group, parked or not.
    fn attached(&self, groups: &[AutoScalingGroup], slot: Slot) -> Option<AutoScalingGroup> {
        let tg = &self.target_groups[slot.index()];
        groups
            .iter()
            .find(|g| g.target_group_arns().contains(tg))
            .cloned()
    }

    /// The group attached to the slot's target group.
    async fn group_in(&self, slot: Slot) -> Result<Option<AutoScalingGroup>, PortError> {
        Ok(self.in_slot(&self.groups().await?, slot))
    }

    /// The status of the group in `slot`, if it has one.
    async fn status_of(
        &self,
        group: Option<AutoScalingGroup>,
        slot: Slot,
    ) -> Result<FleetStatus, PortError> {
        let Some(g) = group else {
            return Ok(FleetStatus::absent());
        };
        // Only teal's own tag says which revision runs; missing means unknown.
        let revision = revision_of(&g).map(String::from);
        let in_service = g
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService))
            .count() as u32;
        let healthy = in_service.min(
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
            desired: g.desired_capacity().unwrap_or(0).max(0) as u32,
            healthy,
            name: g.auto_scaling_group_name().map(String::from),
        })
    }

    /// Green's launch template: blue's, at the given or a new version.
    async fn launch_template(
        &self,
        blue: &AutoScalingGroup,
        green: Option<GreenTemplate>,
    ) -> Result<LaunchTemplateSpecification, PortError> {
        let lt = blue.launch_template().ok_or_else(|| {
            PortError::new(
                "CreateAutoScalingGroup",
                ErrorKind::Invalid,
                format!(
                    "blue's group {} uses no launch template (a launch configuration or a mixed instances policy); teal needs a launch template",
                    blue.auto_scaling_group_name().unwrap_or("?")
                ),
            )
        })?;
        let version = match green {
            Some(GreenTemplate::Version(v)) => v,
            Some(GreenTemplate::Ami(ami)) => {
                self.new_version(
                    lt.launch_template_id(),
                    lt.launch_template_name(),
                    lt.version(),
                    &ami,
                )
                .await?
            }
            None => {
                return Err(PortError::new(
                    "CreateAutoScalingGroup",
                    ErrorKind::Invalid,
                    "no --launch-template-version or --ami for green",
                ))
            }
        };
        Ok(LaunchTemplateSpecification::builder()
            .set_launch_template_id(lt.launch_template_id().map(String::from))
            .set_launch_template_name(
                lt.launch_template_id()
                    .is_none()
                    .then(|| lt.launch_template_name().map(String::from))
                    .flatten(),
            )
            .version(version)
            .build())
    }

    /// A new version of a launch template (by id, else by name), copied from
    /// `source` with `ami` as its image: its version number. Idempotent: the
    /// client token is made of all three, so a retry after a lost answer (or
    /// a crash before the version was recorded) gets the same version back
    /// instead of another one.
    pub(crate) async fn new_version(
        &self,
        id: Option<&str>,
        name: Option<&str>,
        source: Option<&str>,
        ami: &str,
    ) -> Result<String, PortError> {
        let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
            .image_id(ami)
            .build();
        let out = aws_call!(
            self.calls,
            "CreateLaunchTemplateVersion",
            self.ec2
                .create_launch_template_version()
                .set_launch_template_id(id.map(String::from))
                .set_launch_template_name(id.is_none().then(|| name.map(String::from)).flatten())
                .set_source_version(source.map(String::from))
                .launch_template_data(data)
                .version_description(format!("teal: {ami}"))
                .client_token(client_token(id.or(name).unwrap_or_default(), source, ami))
                .send()
        )?;
        out.launch_template_version()
            .and_then(|v| v.version_number())
            .map(|n| n.to_string())
            .ok_or_else(|| {
                PortError::new(
                    "CreateLaunchTemplateVersion",
                    ErrorKind::Invalid,
                    "no version number in the answer",
                )
            })
    }

    async fn copy_policies(&self, blue: &str, green: &str) -> Result<(), PortError> {
        let out = aws_call!(
            self.calls,
            "DescribePolicies",
            self.asg
                .describe_policies()
                .auto_scaling_group_name(blue)
                .send()
        )?;
        for p in out.scaling_policies() {
            aws_call!(
                self.calls,
                "PutScalingPolicy",
                self.asg
                    .put_scaling_policy()
                    .auto_scaling_group_name(green)
                    .set_policy_name(p.policy_name.clone())
                    .set_policy_type(p.policy_type.clone())
                    .set_adjustment_type(p.adjustment_type.clone())
                    .set_scaling_adjustment(p.scaling_adjustment)
                    .set_cooldown(p.cooldown)
                    .set_step_adjustments(p.step_adjustments.clone())
                    .set_metric_aggregation_type(p.metric_aggregation_type.clone())
                    .set_estimated_instance_warmup(p.estimated_instance_warmup)
                    .set_target_tracking_configuration(p.target_tracking_configuration.clone())
                    .set_min_adjustment_magnitude(p.min_adjustment_magnitude)
                    .set_enabled(p.enabled)
                    .send()
            )?;
        }
        Ok(())
    }
}

impl AsgFleet {
    /// What green runs exists, read-only: blue uses a launch template, and
    /// `--launch-template-version` is a version of it, or `--ami` an image
    /// this account can launch. Otherwise the deployment would fail after
    /// its first write.
    async fn check_green(
        &self,
        blue: &AutoScalingGroup,
        green: Option<&GreenTemplate>,
    ) -> Vec<String> {
        let Some(lt) = blue.launch_template() else {
            return vec![format!(
                "fleet.group: {} uses no launch template (a launch configuration or a mixed instances policy); teal needs a launch template",
                blue.auto_scaling_group_name().unwrap_or("?")
            )];
        };
        let template = lt
            .launch_template_id()
            .or(lt.launch_template_name())
            .unwrap_or("?");
        match green {
            Some(GreenTemplate::Version(v)) => {
                let found = aws_call!(
                    self.calls,
                    "DescribeLaunchTemplateVersions",
                    self.ec2
                        .describe_launch_template_versions()
                        .set_launch_template_id(lt.launch_template_id().map(String::from))
                        .set_launch_template_name(
                            lt.launch_template_id()
                                .is_none()
                                .then(|| lt.launch_template_name().map(String::from))
                                .flatten()
                        )
                        .versions(v)
                        .send()
                );
                match found {
                    Ok(o) if !o.launch_template_versions().is_empty() => vec![],
                    Err(e) if e.is_transient() => vec![format!(
                        "--launch-template-version {v}: launch template {template} could not be read ({})",
                        e.message
                    )],
                    _ => vec![format!(
                        "--launch-template-version {v}: blue's launch template {template} has no such version"
                    )],
                }
            }
            Some(GreenTemplate::Ami(ami)) => {
                let found = aws_call!(
                    self.calls,
                    "DescribeImages",
                    self.ec2.describe_images().image_ids(ami).send()
                );
                match found {
                    Ok(o) if !o.images().is_empty() => vec![],
                    Err(e) if e.is_transient() => vec![format!(
                        "--ami {ami}: the image could not be read ({})",
                        e.message
                    )],
                    _ => vec![format!(
                        "--ami {ami}: no such image in this region (or not visible to this account)"
                    )],
                }
            }
            None => vec![],
        }
    }
}

/// EC2's idempotency token (at most 64 ASCII characters) for a new version
/// of `template` from `source` with `ami`.
impl AsgFleet {
    /// With existing slots: both groups exist, each attached to its own
    /// slot's target group (what `in_slot` tells slots by).
    async fn check_existing(&self) -> Result<Vec<String>, PortError> {
        let groups = self.groups().await?;
        let mut problems = Vec::new();
        for slot in Slot::BOTH {
            let name = self.name_for(slot);
            let Some(g) = groups
                .iter()
                .find(|g| g.auto_scaling_group_name() == Some(name.as_str()))
            else {
                problems.push(format!(
                    "fleet.slots = \"existing\": no Auto Scaling group {name:?}; declare both {} and \
                     {} in your infrastructure code (the idle one at 0 instances)",
                    self.name_for(Slot::A),
                    self.name_for(Slot::B)
                ));
                continue;
            };
            if self.attached(std::slice::from_ref(g), slot).is_none() {
                problems.push(format!(
                    "fleet.slots = \"existing\": group {name:?} is not attached to slot {slot}'s \
                     target group {}",
                    self.target_groups[slot.index()]
                ));
            }
        }
        Ok(problems)
    }

    /// Existing slots: bring the parked group in `slot` up as green
    /// (idempotent). The revision tag goes first, so that a retry after a
    /// partial start finds its own group, never "another revision".
    async fn unpark(&self, slot: Slot, green: &Green, desired: u32) -> Result<(), PortError> {
        let groups = self.groups().await?;
        if let Some(live) = self.in_slot(&groups, slot) {
            let tagged = revision_of(&live);
            return crate::aws::existing_is_ours(
                "UpdateAutoScalingGroup",
                slot,
                &format!("group {}", live.auto_scaling_group_name().unwrap_or("?")),
                tagged,
                true,
                &green.revision,
            );
        }
        let name = self.name_for(slot);
        if self.attached(&groups, slot).is_none() {
            return Err(PortError::new(
                "UpdateAutoScalingGroup",
                ErrorKind::NotFound,
                format!("group {name} (slot {slot}, fleet.slots = \"existing\") is gone"),
            ));
        }
        let blue = self.in_slot(&groups, slot.other()).ok_or_else(|| {
            PortError::new(
                "UpdateAutoScalingGroup",
                ErrorKind::NotFound,
                format!("no blue group in slot {} to copy", slot.other()),
            )
        })?;
        let template = self
            .launch_template(&blue, GreenTemplate::parse(green.runs.as_deref()))
            .await?;
        let tag = Tag::builder()
            .key(tags::REVISION)
            .value(green.revision.as_str())
            .resource_id(&name)
            .resource_type("auto-scaling-group")
            .propagate_at_launch(true)
            .build();
        aws_call!(
            self.calls,
            "CreateOrUpdateTags",
            self.asg.create_or_update_tags().tags(tag).send()
        )?;
        aws_call!(
            self.calls,
            "UpdateAutoScalingGroup",
            self.asg
                .update_auto_scaling_group()
                .auto_scaling_group_name(&name)
                .launch_template(template)
                .min_size(green_bounds(&blue, desired).0)
                .max_size(green_bounds(&blue, desired).1)
                .desired_capacity(desired as i32)
                .send()
        )?;
        self.copy_policies(blue.auto_scaling_group_name().unwrap_or(&self.base), &name)
            .await
    }

    /// Existing slots: park the group in `slot` (idempotent) with
    /// min = max = desired = 0, so no scaling policy brings it back.
    async fn park(&self, slot: Slot) -> Result<(), PortError> {
        let Some(g) = self.group_in(slot).await? else {
            return Ok(());
        };
        aws_call!(
            self.calls,
            "UpdateAutoScalingGroup",
            self.asg
                .update_auto_scaling_group()
                .auto_scaling_group_name(g.auto_scaling_group_name().unwrap_or_default())
                .min_size(0)
                .max_size(0)
                .desired_capacity(0)
                .send()
        )?;
        Ok(())
    }
}

/// Green's (min, max): blue's, widened to hold `desired` (blue's count now).
fn green_bounds(blue: &AutoScalingGroup, desired: u32) -> (i32, i32) {
    let desired = desired as i32;
    (
        blue.min_size().unwrap_or(0).min(desired),
        blue.max_size().unwrap_or(desired).max(desired),
    )
}

fn client_token(template: &str, source: Option<&str>, ami: &str) -> String {
    // The template last: a long name is what gets cut.
    let token = format!("{ami}/{}/{template}", source.unwrap_or("$Default"));
    token
        .chars()
        .filter(char::is_ascii_graphic)
        .take(64)
        .collect()
}

#[async_trait]
impl Fleet for AsgFleet {
    async fn preflight(&self, _plan: &crate::engine::Plan, green: &Green) -> crate::ports::Checks {
        let green = GreenTemplate::parse(green.runs.as_deref());
        let mut problems = Vec::new();
        if self.slots == Slots::Existing {
            match self.check_existing().await {
                Ok(p) => problems.extend(p),
                Err(e) if e.is_transient() => return crate::ports::Checks::unread(e),
                Err(e) => problems.push(format!(
                    "fleet.group: cannot read Auto Scaling groups ({})",
                    e.message
                )),
            }
            if !problems.is_empty() {
                return crate::ports::Checks::problems(problems);
            }
        }
        let mut found = false;
        let mut blue = None;
        for slot in Slot::BOTH {
            match self.group_in(slot).await {
                Ok(g) => {
                    found |= g.is_some();
                    blue = blue.or(g);
                }
                Err(e) if e.is_transient() => return crate::ports::Checks::unread(e),
                Err(e) => {
                    problems.push(format!(
                        "fleet.group: cannot read Auto Scaling groups ({})",
                        e.message
                    ));
                    break;
                }
            }
        }
        if problems.is_empty() && !found {
            problems.push(match self.slots {
                Slots::Existing => format!(
                    "fleet.slots = \"existing\": both {} and {} are parked at 0 instances; blue \
                     must run: give the live one its instances in your infrastructure code",
                    self.name_for(Slot::A),
                    self.name_for(Slot::B)
                ),
                Slots::Created => format!(
                    "fleet.group: no Auto Scaling group {:?} (or {}) is attached to either target group",
                    self.base,
                    self.candidates()[1..].join(", ")
                ),
            });
        }
        if green.is_none() {
            problems.push(
                "what should green run? give --launch-template-version N or --ami ID".to_string(),
            );
        }
        if let Some(blue) = &blue {
            problems.extend(self.check_green(blue, green.as_ref()).await);
        }
        crate::ports::Checks::problems(problems)
    }

    async fn status(&self, slot: Slot) -> Result<FleetStatus, PortError> {
        self.status_of(self.group_in(slot).await?, slot).await
    }

    async fn statuses(&self) -> Result<[FleetStatus; 2], PortError> {
        let groups = self.groups().await?;
        Ok([
            self.status_of(self.in_slot(&groups, Slot::A), Slot::A)
                .await?,
            self.status_of(self.in_slot(&groups, Slot::B), Slot::B)
                .await?,
        ])
    }

    async fn provision(&self, slot: Slot, green: &Green, desired: u32) -> Result<(), PortError> {
        if self.slots == Slots::Existing {
            return self.unpark(slot, green, desired).await;
        }
        let revision = green.revision.as_str();
        if let Some(existing) = self.group_in(slot).await? {
            let tagged = revision_of(&existing);
            let name = existing.auto_scaling_group_name().unwrap_or("?");
            let ours = name == format!("{}-{slot}", self.base);
            return crate::aws::existing_is_ours(
                "CreateAutoScalingGroup",
                slot,
                &format!("group {name}"),
                tagged,
                ours,
                revision,
            );
        }
        let blue = self.group_in(slot.other()).await?.ok_or_else(|| {
            PortError::new(
                "CreateAutoScalingGroup",
                ErrorKind::NotFound,
                format!("no blue group in slot {} to clone", slot.other()),
            )
        })?;
        let template = self
            .launch_template(&blue, GreenTemplate::parse(green.runs.as_deref()))
            .await?;
        let name = format!("{}-{slot}", self.base);
        let tags: Vec<Tag> = blue
            .tags()
            .iter()
            .filter(|t| t.key() != Some(tags::REVISION))
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                    t.propagate_at_launch(),
                )
            })
            .chain([(tags::REVISION.to_string(), revision.to_string(), Some(true))])
            .map(|(k, v, p)| {
                Tag::builder()
                    .key(k)
                    .value(v)
                    .set_propagate_at_launch(p)
                    .resource_id(&name)
                    .resource_type("auto-scaling-group")
                    .build()
            })
            .collect();
        aws_call!(
            self.calls,
            "CreateAutoScalingGroup",
            self.asg
                .create_auto_scaling_group()
                .auto_scaling_group_name(&name)
                .launch_template(template)
                .min_size(green_bounds(&blue, desired).0)
                .max_size(green_bounds(&blue, desired).1)
                .desired_capacity(desired as i32)
                .set_vpc_zone_identifier(blue.vpc_zone_identifier().map(String::from))
                .set_availability_zones(
                    blue.vpc_zone_identifier()
                        .is_none()
                        .then(|| blue.availability_zones().to_vec())
                )
                .set_health_check_type(blue.health_check_type().map(String::from))
                .set_health_check_grace_period(blue.health_check_grace_period())
                .target_group_arns(&self.target_groups[slot.index()])
                .set_tags(Some(tags))
                .send()
        )?;
        self.copy_policies(blue.auto_scaling_group_name().unwrap_or(&self.base), &name)
            .await
    }

    async fn remove(&self, slot: Slot) -> Result<(), PortError> {
        if self.slots == Slots::Existing {
            return self.park(slot).await;
        }
        let tg = &self.target_groups[slot.index()];
        let tagged = |g: &AutoScalingGroup| {
            g.tags()
                .iter()
                .any(|t| t.key() == Some(tags::SLOT) && t.value() == Some(&slot.to_string()))
        };
        let groups = self.groups().await?;
        // Attached to the slot, or detached by an earlier, interrupted removal.
        let Some(g) = groups.iter().find(|g| {
            g.target_group_arns().contains(tg) || (tagged(g) && g.target_group_arns().is_empty())
        }) else {
            return Ok(());
        };
        let name = g.auto_scaling_group_name().unwrap_or_default().to_string();
        if g.target_group_arns().contains(tg) {
            let tag = Tag::builder()
                .key(tags::SLOT)
                .value(slot.to_string())
                .resource_id(&name)
                .resource_type("auto-scaling-group")
                .propagate_at_launch(false)
                .build();
            aws_call!(
                self.calls,
                "CreateOrUpdateTags",
                self.asg.create_or_update_tags().tags(tag).send()
            )?;
            // Detach first so the target group drains connections before instances go.
            aws_call!(
                self.calls,
                "DetachLoadBalancerTargetGroups",
                self.asg
                    .detach_load_balancer_target_groups()
                    .auto_scaling_group_name(&name)
                    .target_group_arns(tg)
                    .send()
            )?;
        }
        aws_call!(
            self.calls,
            "DeleteAutoScalingGroup",
            self.asg
                .delete_auto_scaling_group()
                .auto_scaling_group_name(&name)
                .force_delete(true)
                .send()
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::client_token;

    #[test]
    fn the_version_token_tells_apart_what_makes_a_version_and_fits_ec2s_limit() {
        let t = client_token("lt-0123456789abcdef0", Some("3"), "ami-0123456789abcdef0");
        assert_eq!(t, "ami-0123456789abcdef0/3/lt-0123456789abcdef0");
        assert_ne!(
            t,
            client_token("lt-0123456789abcdef0", Some("4"), "ami-0123456789abcdef0")
        );
        assert_ne!(
            t,
            client_token("lt-0123456789abcdef0", Some("3"), "ami-0123456789abcdef1")
        );
        let long = client_token(&"n".repeat(128), Some("12"), "ami-0123456789abcdef0");
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("ami-0123456789abcdef0/12/"));
    }
}

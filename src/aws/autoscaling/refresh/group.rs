//! The rolling strategy on the Auto Scaling fleet: its one group refreshed in
//! place to a new version of its launch template (`--launch-template-version
//! N`, or one made from the current version with `--ami`).
//!
//! Level-triggered and resumable from any process: before the refresh starts
//! the group is tagged with what this deployment does (the revision, when the
//! deployment began, and the launch template versions it goes from and to).
//! Every read starts from those tags, so a `teal status`, a `teal rollback`
//! from another shell or a deploy resumed after a crash finds the same
//! refresh and the same way back ([`InstanceRefreshRollout`]); a later
//! deployment, even of the same revision, finds tags not its own and starts
//! afresh.

use super::{InstanceRefreshRollout, RefreshPlan, Template};
use crate::aws::autoscaling::{AsgFleet, GreenTemplate};
use crate::aws::tags;
use crate::aws_call;
use crate::model::{Green, Millis, RolloutState};
use crate::ports::{Checks, ErrorKind, PortError, Rollout};
use async_trait::async_trait;
use aws_sdk_autoscaling::types::{AutoScalingGroup, Tag};
use std::time::{Duration, UNIX_EPOCH};

/// A rollout as recorded in the group's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tagged {
    revision: String,
    started: Millis,
    from: Template,
    to: Template,
}

impl Tagged {
    /// Whether this is the rollout of `revision` by the deployment begun at `since`.
    fn is(&self, revision: &str, since: Millis) -> bool {
        self.revision == revision && self.started == since
    }
}

/// The Auto Scaling fleet's group, updated in place by an instance refresh.
pub struct GroupRollout {
    fleet: AsgFleet,
    plan: RefreshPlan,
}

impl GroupRollout {
    /// A rolling update of `fleet`'s group to what it says green runs.
    pub fn new(fleet: AsgFleet, plan: RefreshPlan) -> GroupRollout {
        GroupRollout { fleet, plan }
    }

    /// The fleet's one group.
    async fn group(&self) -> Result<AutoScalingGroup, PortError> {
        let groups = self.fleet.groups().await?;
        match groups.as_slice() {
            [g] => Ok(g.clone()),
            [] => Err(PortError::new(
                "DescribeAutoScalingGroups",
                ErrorKind::NotFound,
                format!(
                    "no Auto Scaling group {}",
                    self.fleet.candidates().join(" or ")
                ),
            )),
            many => Err(PortError::new(
                "DescribeAutoScalingGroups",
                ErrorKind::Invalid,
                format!(
                    "a rolling update changes one group, and {} all exist: a blue/green \
                     deployment is under way or left its green behind; finish it or roll it back first",
                    many.iter()
                        .filter_map(|g| g.auto_scaling_group_name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// The refresh adapter for a tagged rollout of `group`.
    fn refresh(&self, group: &AutoScalingGroup, t: &Tagged) -> InstanceRefreshRollout {
        InstanceRefreshRollout {
            client: self.fleet.asg.clone(),
            calls: self.fleet.calls.clone(),
            group: group.auto_scaling_group_name().unwrap_or_default().into(),
            target: t.to.clone(),
            previous: t.from.clone(),
            plan: self.plan.clone(),
            since: t.started,
        }
    }

    /// The group's launch template, its version a number.
    async fn current(&self, group: &AutoScalingGroup) -> Result<Template, PortError> {
        let lt = group.launch_template().ok_or_else(|| {
            PortError::new(
                "StartInstanceRefresh",
                ErrorKind::Invalid,
                format!(
                    "group {} uses no launch template (a launch configuration or a mixed \
                     instances policy); teal refreshes it to a new launch template version",
                    group.auto_scaling_group_name().unwrap_or("?")
                ),
            )
        })?;
        self.resolve(
            lt.launch_template_id(),
            lt.launch_template_name(),
            lt.version().unwrap_or("$Default"),
        )
        .await
    }

    /// A launch template (by id, else name) at `version`, `$Default` and
    /// `$Latest` made numbers: a refresh's target and its way back must not
    /// move when someone adds a version.
    async fn resolve(
        &self,
        id: Option<&str>,
        name: Option<&str>,
        version: &str,
    ) -> Result<Template, PortError> {
        let out = aws_call!(
            self.fleet.calls,
            "DescribeLaunchTemplates",
            self.fleet
                .ec2
                .describe_launch_templates()
                .set_launch_template_ids(id.map(|i| vec![i.to_string()]))
                .set_launch_template_names(
                    id.is_none()
                        .then(|| name.map(|n| vec![n.to_string()]))
                        .flatten()
                )
                .send()
        )?;
        let t = out.launch_templates().first().ok_or_else(|| {
            PortError::new(
                "DescribeLaunchTemplates",
                ErrorKind::NotFound,
                format!("launch template {} not found", id.or(name).unwrap_or("?")),
            )
        })?;
        let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
        let version = match version {
            "$Default" => number(t.default_version_number()),
            "$Latest" => number(t.latest_version_number()),
            v => v.to_string(),
        };
        Ok(Template {
            id: t.launch_template_id().unwrap_or_default().to_string(),
            version,
        })
    }

    /// What green runs: the given version, or a new one from `from` with the AMI.
    async fn target(&self, from: &Template, green: &Green) -> Result<Template, PortError> {
        match GreenTemplate::parse(green.runs.as_deref()) {
            Some(GreenTemplate::Version(v)) => self.resolve(Some(&from.id), None, &v).await,
            Some(GreenTemplate::Ami(ami)) => Ok(Template {
                id: from.id.clone(),
                version: self
                    .fleet
                    .new_version(Some(&from.id), None, Some(&from.version), &ami)
                    .await?,
            }),
            None => Err(PortError::new(
                "StartInstanceRefresh",
                ErrorKind::Invalid,
                "no --launch-template-version or --ami for the update",
            )),
        }
    }

    /// Why the group cannot take a refresh now, if another is under way (or
    /// the refreshes cannot be read).
    async fn refresh_under_way(&self, group: &AutoScalingGroup) -> Option<String> {
        use aws_sdk_autoscaling::types::InstanceRefreshStatus as S;
        let name = group.auto_scaling_group_name().unwrap_or_default();
        let out = aws_call!(
            self.fleet.calls,
            "DescribeInstanceRefreshes",
            self.fleet
                .asg
                .describe_instance_refreshes()
                .auto_scaling_group_name(name)
                .max_records(1)
                .send()
        );
        let newest = match out {
            Ok(o) => o.instance_refreshes().first().cloned(),
            Err(e) => {
                return Some(format!(
                    "fleet.group: cannot read {name}'s instance refreshes ({})",
                    e.message
                ))
            }
        };
        let r = newest?;
        matches!(
            r.status(),
            Some(S::Pending | S::InProgress | S::Baking | S::Cancelling | S::RollbackInProgress)
        )
        .then(|| {
            format!(
                "fleet.group: an instance refresh of {name} is under way ({}, {}); wait for it to end or cancel it",
                r.instance_refresh_id().unwrap_or("?"),
                r.status().map_or("?", |s| s.as_str())
            )
        })
    }

    /// Record the rollout on the group, before the refresh starts.
    async fn tag(&self, group: &str, t: &Tagged) -> Result<(), PortError> {
        let started =
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(t.started));
        let tags = [
            (tags::ROLLOUT_REVISION, t.revision.clone()),
            (tags::ROLLOUT_STARTED, started.to_string()),
            (
                tags::ROLLOUT_FROM,
                format!("{}:{}", t.from.id, t.from.version),
            ),
            (tags::ROLLOUT_TO, format!("{}:{}", t.to.id, t.to.version)),
        ]
        .into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .resource_id(group)
                .resource_type("auto-scaling-group")
                .propagate_at_launch(false)
                .build()
        })
        .collect();
        aws_call!(
            self.fleet.calls,
            "CreateOrUpdateTags",
            self.fleet
                .asg
                .create_or_update_tags()
                .set_tags(Some(tags))
                .send()
        )
        .map(|_| ())
    }
}

/// The rollout recorded in a group's tags, if all of it is there.
fn tagged(group: &AutoScalingGroup) -> Option<Tagged> {
    let tag = |key: &str| {
        group
            .tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
    };
    let template = |v: &str| {
        let (id, version) = v.rsplit_once(':')?;
        Some(Template {
            id: id.into(),
            version: version.into(),
        })
    };
    let started = humantime::parse_rfc3339(tag(tags::ROLLOUT_STARTED)?).ok()?;
    Some(Tagged {
        revision: tag(tags::ROLLOUT_REVISION)?.to_string(),
        started: started.duration_since(UNIX_EPOCH).ok()?.as_millis() as Millis,
        from: template(tag(tags::ROLLOUT_FROM)?)?,
        to: template(tag(tags::ROLLOUT_TO)?)?,
    })
}

#[async_trait]
impl Rollout for GroupRollout {
    async fn preflight(&self, green: &Green) -> (Checks, Option<String>) {
        let mut problems = Vec::new();
        let mut current = None;
        match self.group().await {
            Err(e) if e.is_transient() => return (Checks::unread(e), None),
            Err(e) => problems.push(format!("fleet.group: {}", e.message)),
            Ok(g) => {
                match self.current(&g).await {
                    Err(e) if e.is_transient() => return (Checks::unread(e), None),
                    Err(e) => problems.push(format!("fleet.group: {}", e.message)),
                    Ok(t) => current = Some(t),
                }
                if let Some(busy) = self.refresh_under_way(&g).await {
                    problems.push(busy);
                }
            }
        }
        match (GreenTemplate::parse(green.runs.as_deref()), &current) {
            (None, _) => problems.push(
                "what should the group run? give --launch-template-version N or --ami ID".into(),
            ),
            (Some(GreenTemplate::Version(v)), Some(from)) => {
                let found = aws_call!(
                    self.fleet.calls,
                    "DescribeLaunchTemplateVersions",
                    self.fleet
                        .ec2
                        .describe_launch_template_versions()
                        .launch_template_id(&from.id)
                        .versions(&v)
                        .send()
                );
                if !found.is_ok_and(|o| !o.launch_template_versions().is_empty()) {
                    problems.push(format!(
                        "--launch-template-version {v}: launch template {} has no such version",
                        from.id
                    ));
                }
            }
            _ => {}
        }
        (
            Checks::problems(problems),
            current.map(|t| format!("launch-template-version={}", t.version)),
        )
    }

    async fn state(&self, green: &Green) -> Result<RolloutState, PortError> {
        let g = self.group().await?;
        match tagged(&g) {
            Some(t) if t.is(&green.revision, green.since) => self.refresh(&g, &t).state().await,
            _ => Ok(RolloutState::NotStarted),
        }
    }

    async fn start(&self, green: &Green) -> Result<(), PortError> {
        let g = self.group().await?;
        let t = match tagged(&g) {
            // Begun by an earlier attempt: start (or find) the same refresh.
            Some(t) if t.is(&green.revision, green.since) => t,
            _ => {
                let from = self.current(&g).await?;
                let to = self.target(&from, green).await?;
                let t = Tagged {
                    revision: green.revision.clone(),
                    started: green.since,
                    from,
                    to,
                };
                self.tag(g.auto_scaling_group_name().unwrap_or_default(), &t)
                    .await?;
                t
            }
        };
        self.refresh(&g, &t).start().await
    }

    async fn revert(&self) -> Result<(), PortError> {
        let g = self.group().await?;
        let t = tagged(&g).ok_or_else(|| {
            PortError::new(
                "RollbackInstanceRefresh",
                ErrorKind::Invalid,
                format!(
                    "group {} has no {} tag: teal does not know what to go back to",
                    g.auto_scaling_group_name().unwrap_or("?"),
                    tags::ROLLOUT_FROM
                ),
            )
        })?;
        self.refresh(&g, &t).revert().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(tags: &[(&str, &str)]) -> AutoScalingGroup {
        let mut g = AutoScalingGroup::builder().auto_scaling_group_name("web");
        for (k, v) in tags {
            g = g.tags(
                aws_sdk_autoscaling::types::TagDescription::builder()
                    .key(*k)
                    .value(*v)
                    .build(),
            );
        }
        g.build()
    }

    #[test]
    fn a_rollout_is_read_back_from_the_tags_it_was_written_as() {
        let g = group(&[
            (tags::ROLLOUT_REVISION, "v2"),
            (tags::ROLLOUT_STARTED, "2026-11-22T20:00:00.250Z"),
            (tags::ROLLOUT_FROM, "lt-0abc:3"),
            (tags::ROLLOUT_TO, "lt-0abc:4"),
        ]);
        assert_eq!(
            tagged(&g),
            Some(Tagged {
                revision: "v2".into(),
                started: 1_795_377_600_250,
                from: Template {
                    id: "lt-0abc".into(),
                    version: "3".into()
                },
                to: Template {
                    id: "lt-0abc".into(),
                    version: "4".into()
                },
            })
        );
    }

    #[test]
    fn a_group_missing_any_rollout_tag_has_no_rollout() {
        let all = [
            (tags::ROLLOUT_REVISION, "v2"),
            (tags::ROLLOUT_STARTED, "2026-11-22T20:00:00Z"),
            (tags::ROLLOUT_FROM, "lt-0abc:3"),
            (tags::ROLLOUT_TO, "lt-0abc:4"),
        ];
        for missing in 0..all.len() {
            let some: Vec<_> = (0..all.len())
                .filter(|i| *i != missing)
                .map(|i| all[i])
                .collect();
            assert_eq!(tagged(&group(&some)), None, "without {}", all[missing].0);
        }
        assert_eq!(
            tagged(&group(&[
                (tags::ROLLOUT_REVISION, "v2"),
                (tags::ROLLOUT_STARTED, "yesterday"),
                (tags::ROLLOUT_FROM, "lt-0abc:3"),
                (tags::ROLLOUT_TO, "lt-0abc:4"),
            ])),
            None,
            "an unreadable start time"
        );
    }
}

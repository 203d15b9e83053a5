//! `[fleet]`: the compute of each slot, read by its `kind` into a [`FleetConfig`].
//!
//! A new fleet adds its raw shape, its validation and its line in `teal plan` here.

use super::fields::{arn, count, non_empty, pair, section, section_kind, FleetSection};
use crate::diag::{InputError, SourceFile};
use crate::model::{fmt_ms, Millis};
use crate::strategy::raw::duration;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `[fleet]`, validated.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FleetConfig {
    /// In-memory simulated fleet (no AWS, virtual clock).
    Sim {
        /// Instances per fleet.
        instances: u32,
        /// Time a new fleet takes to become healthy.
        healthy_after_ms: Millis,
        /// Blue's revision before the first deployment.
        live_revision: String,
    },
    /// An ECS service per slot.
    Ecs {
        /// Cluster name or ARN.
        cluster: String,
        /// Blue's service.
        service: String,
        /// The container patched with `--image` and attached to the target group.
        container: String,
        /// Its port.
        container_port: u16,
        /// Whether teal creates and deletes the slots' services, or they
        /// exist beforehand (`NAME-a`, `NAME-b`, declared in IaC).
        slots: Slots,
    },
    /// An Auto Scaling group per slot.
    Asg {
        /// Blue's group.
        group: String,
        /// Target groups of the slots (A, B) when the router has none of its own.
        target_groups: Vec<String>,
        /// Whether teal creates and deletes the slots' groups, or they exist
        /// beforehand (`NAME-a`, `NAME-b`, declared in IaC).
        slots: Slots,
    },
    /// A static site in an S3 bucket: each slot a revision's prefix
    /// (`s3://bucket/prefix/<revision>/`), uploaded from a build directory.
    S3 {
        /// The bucket's name.
        bucket: String,
        /// The prefix under which each revision has its own (`site`).
        prefix: String,
        /// The build directory to upload (`{revision}` replaced), relative
        /// to where teal runs.
        site: String,
    },
    /// Local processes.
    Local {
        /// What each instance runs.
        runs: LocalRuns,
        /// Instances per revision.
        instances: u32,
        /// Health path.
        health_path: String,
    },
}

/// What a local instance runs (`fleet.command` or `fleet.site`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalRuns {
    /// A program and its arguments; `{port}` and `{revision}` are replaced.
    Command(Vec<String>),
    /// A static site: the build directory of each revision (`{revision}`
    /// replaced, relative to where teal runs), served by `teal site serve`.
    Site(String),
}

impl LocalRuns {
    /// The build directory of `revision`, for a site.
    pub fn site_dir(&self, revision: &str) -> Option<std::path::PathBuf> {
        match self {
            LocalRuns::Site(dir) => Some(dir.replace("{revision}", revision).into()),
            LocalRuns::Command(_) => None,
        }
    }
}

/// Who owns the two slots' services or groups (`fleet.slots`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Slots {
    /// teal creates green (`NAME-a` or `NAME-b`, cloned from blue) and
    /// deletes the fleet it retires (the default).
    #[default]
    Created,
    /// Both slots' services or groups, `NAME-a` and `NAME-b`, exist
    /// beforehand (declared in Terraform, CloudFormation or CDK): teal
    /// never creates or deletes them. Green is the idle one, updated to the
    /// new revision and scaled to blue's size; the retired one (or green on
    /// a rollback) is scaled to zero, its scaling bounds to zero with it.
    Existing,
}

impl Slots {
    fn parse(file: &SourceFile, v: Option<&Spanned<String>>) -> Result<Slots, InputError> {
        match v.map(|v| (v, v.get_ref().as_str())) {
            None | Some((_, "created")) => Ok(Slots::Created),
            Some((_, "existing")) => Ok(Slots::Existing),
            Some((v, other)) => Err(file.error(
                v.span(),
                "fleet.slots",
                format!(
                    "slots must be \"created\" (teal creates and deletes green) or \"existing\" \
                     (NAME-a and NAME-b exist in your IaC; teal scales them), got {other:?}"
                ),
            )),
        }
    }
}

impl FleetConfig {
    /// Who owns the slots' services or groups (`Created` for fleets that
    /// are not AWS's).
    pub fn slots(&self) -> Slots {
        match self {
            FleetConfig::Ecs { slots, .. } | FleetConfig::Asg { slots, .. } => *slots,
            FleetConfig::Sim { .. } | FleetConfig::Local { .. } | FleetConfig::S3 { .. } => {
                Slots::Created
            }
        }
    }

    /// Its `kind` as written in `teal.toml`.
    pub fn kind(&self) -> &'static str {
        match self {
            FleetConfig::Sim { .. } => "sim",
            FleetConfig::Ecs { .. } => "ecs",
            FleetConfig::Asg { .. } => "asg",
            FleetConfig::S3 { .. } => "s3",
            FleetConfig::Local { .. } => "local",
        }
    }
}

pub(super) fn parse_fleet(
    file: &SourceFile,
    value: &Spanned<toml::Value>,
) -> Result<FleetConfig, InputError> {
    let kind = section_kind(file, value, "fleet", &["sim", "ecs", "asg", "s3", "local"])?;
    Ok(match kind.as_str() {
        "sim" => {
            let f = section::<FleetSection<RawSimFleet>>(file)?.fleet;
            FleetConfig::Sim {
                instances: count(file, f.instances.as_ref(), "fleet.instances", 2)?,
                healthy_after_ms: match &f.healthy_after {
                    Some(d) => duration(file, d, "fleet.healthy_after")?,
                    None => 15_000,
                },
                live_revision: match &f.live_revision {
                    Some(r) => non_empty(file, r, "fleet.live_revision")?,
                    None => "v1".to_string(),
                },
            }
        }
        "ecs" => {
            let f = section::<FleetSection<RawEcsFleet>>(file)?.fleet;
            let port = *f.container_port.get_ref();
            if !(1..=65535).contains(&port) {
                return Err(file.error(
                    f.container_port.span(),
                    "fleet.container_port",
                    format!("port must be 1..=65535, got {port}"),
                ));
            }
            FleetConfig::Ecs {
                cluster: non_empty(file, &f.cluster, "fleet.cluster")?,
                service: non_empty(file, &f.service, "fleet.service")?,
                container: non_empty(file, &f.container, "fleet.container")?,
                container_port: port as u16,
                slots: Slots::parse(file, f.slots.as_ref())?,
            }
        }
        "asg" => {
            let f = section::<FleetSection<RawAsgFleet>>(file)?.fleet;
            let target_groups = match &f.target_groups {
                Some(tgs) => {
                    let out = pair(file, tgs, "fleet.target_groups", "target group ARNs")?;
                    for (i, tg) in tgs.get_ref().iter().enumerate() {
                        arn(
                            file,
                            tg,
                            &format!("fleet.target_groups[{i}]"),
                            "elasticloadbalancing",
                            ":targetgroup/",
                        )?;
                    }
                    out
                }
                None => vec![],
            };
            FleetConfig::Asg {
                group: non_empty(file, &f.group, "fleet.group")?,
                target_groups,
                slots: Slots::parse(file, f.slots.as_ref())?,
            }
        }
        "s3" => {
            let f = section::<FleetSection<RawS3Fleet>>(file)?.fleet;
            let bucket = non_empty(file, &f.bucket, "fleet.bucket")?;
            if !valid_bucket(&bucket) {
                return Err(file.error(
                    f.bucket.span(),
                    "fleet.bucket",
                    format!(
                        "bucket must be an S3 bucket's name (3-63 lower-case letters, digits, \
                         '.' and '-'; not s3://...), got {bucket:?}"
                    ),
                ));
            }
            let prefix = match &f.prefix {
                Some(p) if p.get_ref().split('/').any(|s| s == "." || s == "..") => {
                    return Err(file.error(
                        p.span(),
                        "fleet.prefix",
                        format!(
                            "prefix must not hold '.' or '..' segments, got {:?}",
                            p.get_ref()
                        ),
                    ))
                }
                Some(p) => p.get_ref().trim_matches('/').to_string(),
                None => "site".to_string(),
            };
            FleetConfig::S3 {
                bucket,
                prefix,
                site: non_empty(file, &f.site, "fleet.site")?,
            }
        }
        _ => {
            let f = section::<FleetSection<RawLocalFleet>>(file)?.fleet;
            let runs = match (f.command, f.site) {
                (Some(_), Some(site)) => {
                    return Err(file.error(
                        site.span(),
                        "fleet.site",
                        "give command or site, not both: a site's instances run `teal site serve`",
                    ))
                }
                (None, None) => {
                    return Err(file.error(
                        f.kind.span(),
                        "fleet.command",
                        "a local fleet needs command (a program and its arguments) or site (a static site's build directory per revision, e.g. \"dist/{revision}\")",
                    ))
                }
                (Some(c), None) if c.get_ref().is_empty() => {
                    return Err(file.error(
                        c.span(),
                        "fleet.command",
                        "command must not be empty: give the program and its arguments",
                    ))
                }
                (Some(c), None) => LocalRuns::Command(c.into_inner()),
                (None, Some(site)) if !site.get_ref().contains("{revision}") => {
                    return Err(file.error(
                        site.span(),
                        "fleet.site",
                        format!(
                            "site must name each revision's build with {{revision}} (\"{}/{{revision}}\"): blue and green serve different builds",
                            site.get_ref().trim_end_matches('/')
                        ),
                    ))
                }
                (None, Some(site)) => LocalRuns::Site(site.into_inner()),
            };
            let health_path = match &f.health_path {
                Some(p) if !p.get_ref().starts_with('/') => {
                    return Err(file.error(
                        p.span(),
                        "fleet.health_path",
                        format!("health_path must start with '/', got {:?}", p.get_ref()),
                    ))
                }
                Some(p) => p.get_ref().clone(),
                None => "/healthz".to_string(),
            };
            FleetConfig::Local {
                runs,
                instances: count(file, f.instances.as_ref(), "fleet.instances", 2)?,
                health_path,
            }
        }
    })
}

impl FleetConfig {
    /// Whether this fleet gives canary analysis's query `placeholder` a
    /// value; `None` when the placeholder is not a fleet's.
    pub fn fills(&self, placeholder: &str) -> Option<bool> {
        match placeholder {
            "service" | "cluster" => Some(matches!(self, FleetConfig::Ecs { .. })),
            "group" => Some(matches!(self, FleetConfig::Asg { .. })),
            _ => None,
        }
    }

    /// One line for `teal plan`.
    pub fn describe(&self) -> String {
        match self {
            FleetConfig::Sim {
                instances,
                healthy_after_ms,
                live_revision,
            } => {
                format!(
                    "simulated, {instances} instance(s) of {live_revision}, healthy {} after creation",
                    fmt_ms(*healthy_after_ms)
                )
            }
            FleetConfig::Ecs {
                cluster,
                service,
                container,
                container_port,
                slots: Slots::Created,
            } => {
                format!("ECS service {service} in cluster {cluster} (container {container}:{container_port})")
            }
            FleetConfig::Ecs {
                cluster,
                service,
                container,
                container_port,
                slots: Slots::Existing,
            } => {
                format!("ECS services {service}-a and {service}-b in cluster {cluster}, both existing \
                         (scaled, never created or deleted; container {container}:{container_port})")
            }
            FleetConfig::Asg {
                group,
                slots: Slots::Created,
                ..
            } => format!("Auto Scaling group {group}"),
            FleetConfig::Asg {
                group,
                slots: Slots::Existing,
                ..
            } => format!(
                "Auto Scaling groups {group}-a and {group}-b, both existing (scaled, never created or deleted)"
            ),
            FleetConfig::Local {
                runs: LocalRuns::Command(command),
                instances,
                health_path,
            } => {
                format!(
                    "{instances} local process(es) of `{}`, health {health_path}",
                    command.join(" ")
                )
            }
            FleetConfig::S3 {
                bucket,
                prefix,
                site,
            } => {
                let under = match prefix.is_empty() {
                    true => String::new(),
                    false => format!("{prefix}/"),
                };
                format!("a static site, {site}, uploaded to s3://{bucket}/{under}<revision>/")
            }
            FleetConfig::Local {
                runs: LocalRuns::Site(dir),
                instances,
                ..
            } => {
                format!("a static site, {dir}, served by {instances} local process(es)")
            }
        }
    }
}

/// `[fleet] kind = "sim"`: the in-memory fleet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSimFleet {
    /// Always `sim`.
    pub kind: Spanned<String>,
    /// Instances blue runs (green starts at blue's count).
    pub instances: Option<Spanned<i64>>,
    /// How long a new fleet takes to become healthy.
    pub healthy_after: Option<Spanned<String>>,
    /// The revision blue runs before the first deployment.
    pub live_revision: Option<Spanned<String>>,
}

/// `[fleet] kind = "ecs"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEcsFleet {
    /// Always `ecs`.
    pub kind: Spanned<String>,
    /// Cluster name or ARN.
    pub cluster: Spanned<String>,
    /// Blue's service name (the ledger knows it after the first deployment).
    pub service: Spanned<String>,
    /// The container to patch with `--image` and to attach to the target group.
    pub container: Spanned<String>,
    /// The container port the target group forwards to.
    pub container_port: Spanned<i64>,
    /// `created` (default) or `existing`: see [`Slots`].
    pub slots: Option<Spanned<String>>,
}

/// `[fleet] kind = "asg"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAsgFleet {
    /// Always `asg`.
    pub kind: Spanned<String>,
    /// Blue's Auto Scaling group name.
    pub group: Spanned<String>,
    /// Target groups the slots' groups attach to (slot A, slot B), for health;
    /// required behind Route 53, taken from the router behind an ALB.
    pub target_groups: Option<Spanned<Vec<Spanned<String>>>>,
    /// `created` (default) or `existing`: see [`Slots`].
    pub slots: Option<Spanned<String>>,
}

/// `[fleet] kind = "s3"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawS3Fleet {
    /// Always `s3`.
    pub kind: Spanned<String>,
    /// The bucket's name.
    pub bucket: Spanned<String>,
    /// The prefix of the revisions (default `site`).
    pub prefix: Option<Spanned<String>>,
    /// The build directory (`{revision}` replaced).
    pub site: Spanned<String>,
}

/// Whether `name` follows S3's general purpose bucket naming rules: 3-63
/// characters of lower-case letters, digits, dots and hyphens, starting and
/// ending with a letter or digit ("Bucket naming rules", Amazon S3 User Guide).
fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..")
}

/// `[fleet] kind = "local"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalFleet {
    /// Always `local`.
    pub kind: Spanned<String>,
    /// The command and its arguments; `{port}` and `{revision}` are replaced.
    pub command: Option<Spanned<Vec<String>>>,
    /// Or a static site: each revision's build directory (`{revision}` replaced).
    pub site: Option<Spanned<String>>,
    /// Instances per revision.
    pub instances: Option<Spanned<i64>>,
    /// HTTP path answering 2xx when an instance is healthy.
    pub health_path: Option<Spanned<String>>,
}

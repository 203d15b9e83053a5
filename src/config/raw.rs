//! The serde shapes of `teal.toml`, as written. Every table refuses unknown
//! keys; values that need range checks keep their spans for error messages.
//!
//! `[fleet]` and `[router]` are tagged by `kind`. Serde's tagged enums lose
//! spans, so the file is read in passes: the top level (sections only), then
//! each section's `kind`, then the section again as that kind's struct.

use crate::strategy::RawStrategy;
use serde::Deserialize;
use toml::Spanned;

/// The top level of `teal.toml`. `fleet` and `router` are read again by kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[service]`
    pub service: RawService,
    /// `[fleet]`, re-read by kind.
    pub fleet: Spanned<toml::Value>,
    /// `[router]`, re-read by kind.
    pub router: Spanned<toml::Value>,
    /// `[gates]`
    #[serde(default)]
    pub gates: Option<RawGates>,
    /// `[strategy]`
    pub strategy: Option<Spanned<RawStrategy>>,
    /// `[hooks]`
    pub hooks: Option<RawHooks>,
    /// `[ledger]`
    pub ledger: Option<RawLedger>,
}

/// `[ledger]`: where the deployment record (and so the lock) lives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLedger {
    /// A DynamoDB table (default for ALB routers: `teal-ledger`).
    pub table: Option<Spanned<String>>,
}

/// `[hooks]`: a command per lifecycle point, and one timeout for each run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHooks {
    /// Green healthy, before production traffic.
    pub before_traffic: Option<Spanned<RawHookCommand>>,
    /// After each step's bake.
    pub after_step: Option<Spanned<RawHookCommand>>,
    /// After the keep-alive, before blue is retired.
    pub before_retire: Option<Spanned<RawHookCommand>>,
    /// After the test listener points at green (needs `router.test_listener_arn`).
    pub after_test_traffic: Option<Spanned<RawHookCommand>>,
    /// How long one run may take (`5m`).
    pub timeout: Option<Spanned<String>>,
}

/// A hook command: a string for `sh -c`, or a program and its arguments.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawHookCommand {
    /// `"./smoke.sh --fast"`
    Shell(String),
    /// `["./smoke.sh", "--fast"]`
    Argv(Vec<String>),
}

/// `[service]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// The service's name: used in resource names, tags and the ledger.
    pub name: Spanned<String>,
}

/// Only the `kind` of a section, read first to pick the section's shape.
#[derive(Debug, Deserialize)]
pub struct RawKind {
    /// The kind named in the section.
    pub kind: Option<Spanned<String>>,
}

/// `{ fleet = T }`, to read the fleet section as a given shape.
#[derive(Debug, Deserialize)]
pub struct FleetSection<T> {
    /// The section.
    pub fleet: T,
}

/// `{ router = T }`, to read the router section as a given shape.
#[derive(Debug, Deserialize)]
pub struct RouterSection<T> {
    /// The section.
    pub router: T,
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
}

/// `[fleet] kind = "local"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalFleet {
    /// Always `local`.
    pub kind: Spanned<String>,
    /// The command and its arguments; `{port}` and `{revision}` are replaced.
    pub command: Spanned<Vec<String>>,
    /// Instances per revision.
    pub instances: Option<Spanned<i64>>,
    /// HTTP path answering 2xx when an instance is healthy.
    pub health_path: Option<Spanned<String>>,
}

/// `[router] kind = "sim"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSimRouter {
    /// Always `sim`.
    pub kind: Spanned<String>,
}

/// `[router] kind = "alb"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlbRouter {
    /// Always `alb`.
    pub kind: Spanned<String>,
    /// The listener whose default action splits traffic.
    pub listener_arn: Option<Spanned<String>>,
    /// Or one listener rule whose forward action splits traffic.
    pub rule_arn: Option<Spanned<String>>,
    /// The two target groups: slot A, slot B.
    pub target_groups: Spanned<Vec<Spanned<String>>>,
    /// A second listener pointed 100% at green before production traffic
    /// moves (for `after_test_traffic` hooks).
    pub test_listener_arn: Option<Spanned<String>>,
}

/// `[router] kind = "route53"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute53Router {
    /// Always `route53`.
    pub kind: Spanned<String>,
    /// The hosted zone id (`Z...`).
    pub hosted_zone_id: Spanned<String>,
    /// The record name (`api.example.com`).
    pub record_name: Spanned<String>,
    /// `A`, `AAAA` or `CNAME`.
    pub record_type: Spanned<String>,
    /// The two weighted records' set identifiers: slot A, slot B.
    pub set_identifiers: Spanned<Vec<Spanned<String>>>,
}

/// `[router] kind = "local"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalRouter {
    /// Always `local`.
    pub kind: Spanned<String>,
    /// Where teal's proxy listens (`127.0.0.1:8080`).
    pub listen: Spanned<String>,
    /// Where `teal local serve` answers teal's own calls (loopback only;
    /// default: the proxy's port + 1 on 127.0.0.1).
    pub admin: Option<Spanned<String>>,
}

/// `[gates]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawGates {
    /// CloudWatch alarm names (or sim gate names).
    #[serde(default)]
    pub alarms: Vec<Spanned<String>>,
    /// `ok` (default) or `alarm`: how `INSUFFICIENT_DATA` counts.
    pub insufficient_data: Option<Spanned<String>>,
    /// Start even when an alarm is already in ALARM (default false).
    #[serde(default)]
    pub allow_alarm_at_start: bool,
    /// Live metric gates measured by teal's local proxy.
    pub local: Option<RawLocalGates>,
}

/// `[gates.local]`: measured per slot by the local proxy over a sliding window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalGates {
    /// Highest share of 5xx answers (and failed connections), in percent.
    pub max_5xx_percent: Option<Spanned<f64>>,
    /// Highest p99 latency (`500ms`).
    pub max_p99: Option<Spanned<String>>,
    /// Requests in the window before judging (fewer: INSUFFICIENT_DATA).
    pub min_requests: Option<Spanned<i64>>,
    /// The sliding window (`10s`).
    pub window: Option<Spanned<String>>,
}

//! The serde shapes of `teal.toml`, as written (each section's own shapes
//! live beside its validation and are re-exported here). Every table refuses unknown
//! keys; values that need range checks keep their spans for error messages.
//!
//! `[fleet]` and `[router]` are tagged by `kind`. Serde's tagged enums lose
//! spans, so the file is read in passes: the top level (sections only), then
//! each section's `kind`, then the section again as that kind's struct.

pub use super::analysis::{RawAnalysis, RawMetric, RawOnMarginal, RawQuery};
pub use super::fields::{FleetSection, RawKind, RouterSection};
pub use super::fleet::{RawAsgFleet, RawEcsFleet, RawLocalFleet, RawS3Fleet, RawSimFleet};
pub use super::gates::{RawGates, RawLocalGates};
pub use super::notify::{RawEventBridge, RawNotify, RawSns, RawWebhook};
pub use super::router::{
    RawCloudFrontRouter, RawListenerRouter, RawLocalRouter, RawRoute53Router, RawSimRouter,
};
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
    /// `[analysis]`
    pub analysis: Option<Spanned<RawAnalysis>>,
    /// `[notify]`
    pub notify: Option<RawNotify>,
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

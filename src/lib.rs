//! # teal
//!
//! blue + green = teal: a blue/green traffic-shifting deployment orchestrator
//! for AWS. teal stands up a *green* fleet (ECS service, Auto Scaling group)
//! next to *blue*, moves traffic to it in steps (ALB forward weights, Route 53
//! weighted records), gates every step on alarms, and then retires blue or
//! rolls back to it on its own.
//!
//! The engine is pure and deterministic; all I/O and time live in the driver
//! and the ports' adapters. The same engine runs against the simulated cloud,
//! which the test suite uses to check the safety invariants under faults.
//!
//! ## Layout
//!
//! By layer, each depending only on the ones above it (no module imports
//! [`cli`]; `python3 .ci/modgraph.py` checks the graph has no cycle):
//!
//! **Vocabulary**
//! - [`model`]: slots, roles, weights, fleet and gate readings, green, the rollout's state.
//! - [`hooks`]: the lifecycle points and hook commands, as data.
//! - [`diag`]: errors that point into an input file (file:line:col, field, what is valid).
//! - [`exit`]: the documented exit codes.
//!
//! **Input**
//! - [`strategy`]: strategy files and the built-ins, expanded into steps.
//! - [`config`]: `teal.toml`, one module per section, validated into a
//!   [`config::Config`] that knows how to become the engine's plan.
//! - [`pipeline`]: what a CodePipeline hands teal: `imagedefinitions.json`,
//!   `imageDetail.json`, the CodeBuild run.
//! - [`release`]: a release file: several services' configs in ordered waves,
//!   validated, and one `imagedefinitions.json` split among them.
//!
//! **Core**
//! - [`engine`]: the pure state machine, its record (what the ledger stores) and its rules.
//! - [`ports`]: the `Fleet`, `Rollout`, `Router`, `Gate`, `Metrics`, `Ledger`, `Hooks` and `Clock` traits.
//! - [`driver`]: the async loop that runs the engine's actions through the ports.
//! - [`events`]: what a deployment reports as it goes.
//! - [`analysis`]: canary analysis, green judged against blue: the
//!   Mann-Whitney U test, the judge that scores a bake, what `[analysis]`
//!   asks for, and data points turned into bounds and judgments (pure; the
//!   points come through the `Metrics` port).
//!
//! **Adapters**
//! - [`aws`]: one module per AWS service (ELB, Route 53, DynamoDB, ECS, Auto
//!   Scaling, CloudWatch), the SDK set-up, the tag names, and the wiring of a config.
//! - [`local`]: the local provider: `teal local serve` (weighted proxy, processes, live
//!   metric gates, ledger), its admin API and the client ports; the demo app
//!   and a static site's instance.
//! - [`site`]: a static site's build: its files and how each is cached, and
//!   version skew (what the old `index.html` names that a new build lacks).
//! - [`sim`]: the in-memory cloud with fault injection, the invariant checker and the seeded harness.
//! - [`runner`]: hooks run as child processes.
//! - [`notify`]: a deployment's milestones told to SNS, EventBridge and
//!   webhooks (Slack's among them), from the event stream, never holding it up.
//! - [`wiring`]: the composition root: a config and the cloud options become the ports.
//!
//! **Reading and output**
//! - [`status`]: `teal status`, read-only, with a stable JSON form.
//! - [`report`]: `teal deploy --report` (the run as JSON) and `teal report --svg` (its timeline).
//! - [`cli`]: the command line over all of the above, one file per command family.

#![warn(missing_docs)]
// Input errors carry the source text so miette can draw the offending line;
// they are returned once per process, on the way out. Boxing them would add
// noise to every validator for no measurable gain.
#![allow(clippy::result_large_err)]

pub mod analysis;
pub mod aws;
pub mod cli;
pub mod config;
pub mod diag;
pub mod driver;
pub mod engine;
pub mod events;
pub mod exit;
pub mod hooks;
pub mod local;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod ports;
pub mod release;
pub mod report;
pub mod runner;
pub mod sim;
pub mod site;
pub mod status;
pub mod strategy;
pub mod wiring;

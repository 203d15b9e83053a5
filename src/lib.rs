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
//! - [`model`]: the shared vocabulary: slots, roles, weights, fleet and gate readings.
//! - [`diag`]: errors that point into an input file (file:line:col, field, what is valid).
//! - [`config`]: `teal.toml`, raw serde types validated into a [`config::Config`].
//! - [`strategy`]: strategy files and the built-ins, expanded into steps.
//! - [`engine`]: the pure state machine, its record (what the ledger stores) and its rules.
//! - [`ports`]: the `Fleet`, `Router`, `Gate`, `Ledger`, `Hooks` and `Clock` traits.
//! - [`driver`]: the async loop that runs the engine's actions through the ports.
//! - [`events`]: what a deployment reports as it goes.
//! - [`hooks`]: lifecycle hooks (`before-traffic`, `after-step`, `before-retire`) and the
//!   runner that starts them as child processes.
//! - [`aws`]: the AWS adapters (ALB, CloudWatch, ECS, ledger in tags) on the official SDK.
//! - [`local`]: the local provider: `teal local serve` (weighted proxy, processes, live
//!   metric gates, ledger) and the ports that reach it over its admin API; the demo app.
//! - [`sim`]: the in-memory cloud with fault injection, the invariant checker and the seeded harness.
//! - [`pipeline`]: what a CodePipeline hands teal: `imagedefinitions.json`, `imageDetail.json`,
//!   the CodeBuild run.
//! - [`report`]: `teal deploy --report` (the run as JSON) and `teal report --svg` (its timeline).
//! - [`status`]: `teal status`, read-only, with a stable JSON form.
//! - [`exit`]: the documented exit codes.
//! - [`cli`]: the command line over all of the above.

#![warn(missing_docs)]
// Input errors carry the source text so miette can draw the offending line;
// they are returned once per process, on the way out. Boxing them would add
// noise to every validator for no measurable gain.
#![allow(clippy::result_large_err)]

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
pub mod pipeline;
pub mod ports;
pub mod report;
pub mod runner;
pub mod sim;
pub mod status;
pub mod strategy;
pub mod wiring;

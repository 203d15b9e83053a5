//! The local provider, the embedded default: real processes behind teal's own
//! weighted HTTP proxy, with live metric gates, on one machine.
//!
//! - [`daemon`]: `teal local serve`, the long-lived half: proxy, instances,
//!   gates and ledger, behind a JSON admin API on loopback.
//! - [`api`]: the admin API's wire types.
//! - [`metrics`]: sliding windows per slot and their judgement as gates.
//! - [`seconds`]: per-second samples per slot; [`analysis`]: them as
//!   canary analysis's metrics.
//! - [`app`]: the demo app; [`load`]: a load generator.
//! - [`client`]: the ports, which talk to the daemon's admin API the way
//!   the AWS ports talk to AWS.

pub mod analysis;
pub mod api;
pub mod app;
pub mod client;
pub mod daemon;
pub mod load;
pub mod metrics;
pub mod seconds;

use crate::config::{Config, FleetConfig};
use std::time::Duration;

/// The daemon's settings from a local config.
pub fn daemon_config(config: &Config) -> Option<daemon::DaemonConfig> {
    let FleetConfig::Local {
        command,
        health_path,
        ..
    } = &config.fleet
    else {
        return None;
    };
    Some(daemon::DaemonConfig {
        command: command.clone(),
        health_path: health_path.clone(),
        gates: config.gates.local,
        grace: Duration::from_secs(10),
    })
}

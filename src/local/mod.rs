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

use crate::config::{Config, FleetConfig, RouterConfig};
use crate::ports::{Clock, Ports};
use std::sync::Arc;
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

/// The local ports of a config, talking to its daemon (here, not in
/// [`client`], which [`analysis`] builds on: the two would form a cycle).
pub fn ports(config: &Config, clock: Arc<dyn Clock>) -> Ports {
    let RouterConfig::Local { admin, .. } = &config.router else {
        unreachable!("called for the local provider only")
    };
    let rolling = match config.strategy.shape {
        crate::strategy::Shape::Rolling(r) => Some(r),
        crate::strategy::Shape::BlueGreen { .. } => None,
    };
    let a = Arc::new(client::Admin::new(admin).with_max_percent(rolling.map(|r| r.max_percent)));
    Ports {
        fleet: a.clone(),
        router: a.clone(),
        gate: a.clone(),
        ledger: a.clone(),
        hooks: Arc::new(crate::ports::NoHooks),
        rollout: rolling.map(|_| a.clone() as Arc<dyn crate::ports::Rollout>),
        metrics: config.analysis.as_ref().map(|spec| {
            Arc::new(analysis::LocalMetrics::new((*a).clone(), spec.clone()))
                as Arc<dyn crate::ports::Metrics>
        }),
        clock,
    }
}

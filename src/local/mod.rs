//! The local provider, the embedded default: real processes behind teal's own
//! weighted HTTP proxy, with live metric gates, on one machine.
//!
//! - [`daemon`]: `teal local serve`, the long-lived half: proxy, instances,
//!   gates and ledger, behind a JSON admin API on loopback.
//! - [`api`]: the admin API's wire types.
//! - [`metrics`]: sliding windows per slot and their judgement as gates.
//! - [`seconds`]: per-second samples per slot; [`analysis`]: them as
//!   canary analysis's metrics.
//! - [`app`]: the demo app; [`load`]: a load generator; [`http`]: the
//!   serving loop the demo app and a static site's instances share;
//!   [`site`]: one build of a static site served as S3 would
//!   (`[fleet] site = "builds/{revision}"`).
//! - [`loopback`]: free loopback ports, found together so they differ.
//! - [`client`]: the ports, which talk to the daemon's admin API the way
//!   the AWS ports talk to AWS.

pub mod analysis;
pub mod api;
pub mod app;
pub mod client;
pub mod daemon;
pub mod http;
pub mod load;
pub mod loopback;
pub mod metrics;
pub mod seconds;
pub mod site;

use crate::config::{Config, FleetConfig, LocalRuns, RouterConfig};
use crate::ports::{Clock, Ports};
use std::sync::Arc;
use std::time::Duration;

/// The daemon's settings from a local config. A site's instances run this
/// very program's `teal site serve` on each revision's build.
pub fn daemon_config(config: &Config) -> Option<daemon::DaemonConfig> {
    let FleetConfig::Local {
        runs, health_path, ..
    } = &config.fleet
    else {
        return None;
    };
    let command = match runs {
        LocalRuns::Command(command) => command.clone(),
        LocalRuns::Site(dir) => {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "teal".into());
            [
                &exe,
                "site",
                "serve",
                "--root",
                dir,
                "--port",
                "{port}",
                "--revision",
                "{revision}",
                "--health-path",
                health_path,
            ]
            .map(String::from)
            .to_vec()
        }
    };
    Some(daemon::DaemonConfig {
        command,
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
    let site = match &config.fleet {
        FleetConfig::Local { runs, .. } => runs.clone(),
        _ => unreachable!("called for the local provider only"),
    };
    let a = Arc::new(
        client::Admin::new(admin)
            .with_max_percent(rolling.map(|r| r.max_percent))
            .with_runs(site),
    );
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

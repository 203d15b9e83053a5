//! The composition root: a validated [`Config`] and the [`Cloud`] options
//! become the [`Ports`] every command drives or reads through, hooks
//! included, with the AWS call counter when AWS is used. Every command builds
//! its ports here, once; nothing else chooses a provider.
//!
//! - the simulated provider (`sim.rs`, [`SimRun`]): one process, virtual time, scripted gates;
//! - the local provider: the daemon's admin API ([`crate::local::client`]);
//! - AWS: [`crate::aws::wiring`], a router part and a fleet part per config.

mod notify;
mod sim;

pub use sim::SimRun;

use crate::aws::{ApiCalls, Aws};
use crate::config::{Config, FleetConfig, RouterConfig};
use crate::ports::{Clock, Ports, SystemClock};
use std::sync::Arc;
use std::time::Duration;

/// Where AWS is reached: `--region` and `--profile` over the default chain.
#[derive(Debug, Clone, Default)]
pub struct Cloud {
    /// `--region`.
    pub region: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
}

/// Which provider a config deploys with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `kind = "sim"` for fleet and router: the in-memory cloud.
    Sim,
    /// `kind = "local"` for both: `teal local serve`.
    Local,
    /// Anything else: AWS.
    Aws,
}

impl Provider {
    /// The provider of `config`.
    pub fn of(config: &Config) -> Provider {
        match (&config.fleet, &config.router) {
            (FleetConfig::Sim { .. }, RouterConfig::Sim) => Provider::Sim,
            (FleetConfig::Local { .. }, RouterConfig::Local { .. }) => Provider::Local,
            _ => Provider::Aws,
        }
    }
}

/// Why a config cannot have ports here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WiringError {
    /// The config asks for something this provider cannot do (bad input, exit 2).
    #[error("{0}")]
    Unsupported(String),
}

/// A command's ports, and what counts its AWS calls.
pub struct Wired {
    /// The ports.
    pub ports: Ports,
    /// AWS API calls per operation, when the provider is AWS.
    pub calls: Option<Arc<ApiCalls>>,
    /// Who is told about the deployment's milestones (`[notify]`).
    pub notifier: crate::notify::Notifier,
    /// The SDK set-up, when the provider is AWS.
    aws: Option<Aws>,
}

impl Wired {
    /// Start notifying: the delivery whose [`crate::notify::Delivery::wrap`]
    /// makes the driver's sinks, finished when the command is done.
    pub fn start_notifying(&mut self) -> crate::notify::Delivery {
        std::mem::take(&mut self.notifier).start()
    }

    /// Who this process acts as: the caller's AWS ARN, when AWS is used and
    /// answers; else `None` (the record then keeps the owner: user@host).
    pub async fn identity(&self) -> Option<String> {
        let aws = self.aws.as_ref()?;
        match crate::aws::sts::caller_arn(aws).await {
            Ok(arn) => Some(arn),
            Err(e) => {
                tracing::warn!(error = %e, "the caller's AWS identity is unknown; recording user@host");
                None
            }
        }
    }
}

/// The ports of `config`. `sim` is the run of a simulated deployment; the
/// simulated provider keeps no state between processes, so without one it
/// has no ports (`status`, `resume` and the rest have nothing to read).
pub async fn wire(
    config: &Config,
    cloud: &Cloud,
    sim: Option<&SimRun>,
) -> Result<Wired, WiringError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut aws = None;
    let (ports, calls) = match Provider::of(config) {
        Provider::Sim => {
            let Some(run) = sim else {
                return Err(WiringError::Unsupported(format!(
                    "{}: the simulated provider lives inside one `teal deploy` and keeps no \
                     state between processes, so there is no deployment to verify, show or continue",
                    config.path.display()
                )));
            };
            (sim::ports(config, run)?, None)
        }
        Provider::Local => (crate::local::ports(config, clock), None),
        Provider::Aws => {
            let loaded = aws.insert(Aws::load(cloud.region.clone(), cloud.profile.clone()).await);
            let ports = crate::aws::wiring::ports(loaded, config, clock)
                .map_err(WiringError::Unsupported)?;
            (ports, Some(loaded.calls.clone()))
        }
    };
    let channels = notify::channels(config, aws.as_ref(), cloud).await;
    Ok(Wired {
        ports: with_hooks(ports, config),
        calls,
        notifier: crate::notify::Notifier::new(config, channels),
        aws,
    })
}

/// How long one answer (listeners, rules) serves every member of a release.
pub const SHARED_READ: Duration = Duration::from_secs(1);

/// How long one alarm answer serves every member of a release: the most a
/// member's detection waits on it (a refresh that finds an alarm changed
/// wakes its member). Stretched past 200 alarm names to keep the refreshes
/// within `aws::shared::ALARM_CALLS_PER_SEC`.
pub const SHARED_ALARMS: Duration = Duration::from_millis(500);

/// The ports of several configs (a release's members), AWS loaded once so
/// that every member's calls share one SDK configuration and one counter;
/// with each member's notifier (`[notify]`).
/// `sims` gives each simulated member its run (the same length as `configs`).
pub async fn wire_each(
    configs: &[&Config],
    cloud: &Cloud,
    sims: Option<&[SimRun]>,
) -> Result<
    (
        Vec<Ports>,
        Option<Arc<ApiCalls>>,
        Vec<crate::notify::Notifier>,
    ),
    WiringError,
> {
    let aws = match configs.iter().any(|c| Provider::of(c) == Provider::Aws) {
        // Every member's alarms in one DescribeAlarms (100 names a call), a
        // reading serving all members for half a second: alarm reads cost at
        // most 4 calls a second however many members there are, and an alarm
        // is seen at most half a second late (up to 200 names).
        true => Some(
            Aws::load(cloud.region.clone(), cloud.profile.clone())
                .await
                .sharing_reads(SHARED_READ, SHARED_ALARMS),
        ),
        false => None,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut all = vec![];
    let mut notifiers = vec![];
    for (i, config) in configs.iter().enumerate() {
        let channels = notify::channels(config, aws.as_ref(), cloud).await;
        notifiers.push(crate::notify::Notifier::new(config, channels));
        let ports = match (Provider::of(config), &aws) {
            (Provider::Aws, Some(aws)) => crate::aws::wiring::ports(aws, config, clock.clone())
                .map_err(WiringError::Unsupported)?,
            (Provider::Local, _) => crate::local::ports(config, clock.clone()),
            _ => {
                let run = sims.and_then(|s| s.get(i)).ok_or_else(|| {
                    WiringError::Unsupported(format!(
                        "{}: the simulated provider lives inside one process and keeps no \
                         state between processes, so there is no deployment to show or continue",
                        config.path.display()
                    ))
                })?;
                sim::ports(config, run)?
            }
        };
        all.push(with_hooks(ports, config));
    }
    Ok((all, aws.map(|a| a.calls), notifiers))
}

/// `ports` with the config's hook commands, when it has any.
fn with_hooks(mut ports: Ports, config: &Config) -> Ports {
    if !config.hooks.commands.is_empty() {
        ports.hooks = Arc::new(crate::runner::CommandHooks::new(
            config.hooks.commands.clone(),
            Duration::from_millis(config.hooks.timeout_ms),
        ));
    }
    ports
}

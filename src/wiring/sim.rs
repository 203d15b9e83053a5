//! The simulated provider's ports for a `kind = "sim"` config: the in-memory
//! cloud, its clock starting at the deployment's start.

use super::WiringError;
use crate::config::{Config, FleetConfig};
use crate::model::{GateState, Millis};
use crate::ports::Ports;
use crate::sim::metrics::SimMetrics;
use crate::sim::{SharedTime, SimCloud, SimGate, World};

/// One simulated deployment: when it starts, and `--sim-fail-gate NAME@DURATION`.
#[derive(Debug, Clone, Default)]
pub struct SimRun {
    /// The deployment's start, the simulated clock's zero.
    pub start: Millis,
    /// A gate to fail some time after the start.
    pub fail_gate: Option<String>,
    /// Several simulated deployments in one process (a release): each
    /// world's clock also waits on tokio's clock, paused and started at
    /// this instant at `start`, so the members' virtual times advance
    /// together instead of each running to its end at once.
    pub shared_time: Option<tokio::time::Instant>,
}

/// The in-memory cloud of `config`.
pub(super) fn ports(config: &Config, run: &SimRun) -> Result<Ports, WiringError> {
    let bad = WiringError::Unsupported;
    let FleetConfig::Sim {
        instances,
        healthy_after_ms,
        live_revision,
    } = &config.fleet
    else {
        unreachable!("called for the simulated provider only")
    };
    if !config.hooks.commands.is_empty() {
        // Hooks are real commands taking real time; the simulated clock jumps.
        return Err(bad(format!(
            "{}: [hooks] run real commands, which the simulated provider's virtual clock \
             cannot wait for; try them with the local provider (examples/local)",
            config.path.display()
        )));
    }
    let mut gates: Vec<SimGate> = config
        .gates
        .alarms
        .iter()
        .map(|a| SimGate {
            name: a.clone(),
            script: vec![],
        })
        .collect();
    if let Some(spec) = &run.fail_gate {
        let (name, after) = spec
            .split_once('@')
            .ok_or_else(|| bad(format!("--sim-fail-gate takes NAME@DURATION, got {spec:?}")))?;
        let after = humantime::parse_duration(after)
            .map_err(|e| bad(format!("--sim-fail-gate {spec:?}: {e}")))?;
        let gate = gates
            .iter_mut()
            .find(|g| g.name == name)
            .ok_or_else(|| bad(format!("--sim-fail-gate: no gate {name:?} in gates.alarms")))?;
        gate.script
            .push((run.start + after.as_millis() as u64, GateState::Alarm));
    }
    let mut world = World::new(run.start, run.start, live_revision, *instances, gates);
    world.healthy_after = Some(*healthy_after_ms);
    // Analysis judges series of a green equal to blue, with some noise,
    // around 0.01 (a 1% 5xx share, 10 ms).
    world.metrics = config.analysis.as_ref().map(|spec| SimMetrics {
        spec: spec.clone(),
        seed: run.start,
        base: 0.01,
        noise: 0.2,
        green_factor: 1.0,
        lag_max: spec.late_ms.min(spec.period_ms),
        blue_revision: live_revision.clone(),
    });
    let cloud = SimCloud::new(world);
    let mut ports = cloud.ports();
    if let Some(origin) = run.shared_time {
        ports.clock = std::sync::Arc::new(SharedTime::new(cloud, run.start, origin));
    }
    Ok(ports)
}

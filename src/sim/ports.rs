//! The simulated cloud as the driver sees it: every port implemented over the
//! world, each call under the world's fate (latency, a transient failure that
//! may still have taken effect, a kill that never returns).

use super::*;

fn transient(op: &str) -> PortError {
    PortError::new(
        op,
        ErrorKind::Transient,
        "injected: ThrottlingException / 503 / timeout",
    )
}

/// Never completes: the process died during this call.
async fn die<T>() -> T {
    std::future::pending().await
}

/// Run a call under the world's fate: `$effect` (a closure over the world)
/// happens when the fate says so; a killed call never returns.
macro_rules! sim_call {
    ($self:ident, $op:expr, $mutating:expr, |$w:ident| $effect:expr) => {
        sim_call!($self, $op, $mutating, paced: true, |$w| $effect)
    };
    // `paced: false`: a call the rate limit never puts off (all traffic to
    // one slot, like `aws::pace::urgent`).
    ($self:ident, $op:expr, $mutating:expr, paced: $paced:expr, |$w:ident| $effect:expr) => {{
        match $self.begin($op, $mutating, $paced) {
            Begun::Killed => die().await,
            Begun::Paced(after) => Err(PortError::paced($op, after)),
            Begun::Go { took_effect, fail } => {
                let result = if took_effect {
                    #[allow(unused_mut)]
                    let mut $w = $self.world();
                    Some($effect)
                } else {
                    None
                };
                if $self.world().killed {
                    return die().await;
                }
                match (fail, result) {
                    (false, Some(r)) => r,
                    _ => Err(transient($op)),
                }
            }
        }
    }};
}

/// The simulated series as canary analysis reads them (a port of its own:
/// it answers [`Metrics::spec`] without the world's lock).
pub(super) struct SimMetricsPort {
    pub(super) cloud: SimCloud,
    pub(super) spec: crate::analysis::AnalysisSpec,
}

#[async_trait]
impl crate::ports::Metrics for SimMetricsPort {
    fn spec(&self) -> &crate::analysis::AnalysisSpec {
        &self.spec
    }

    async fn read(
        &self,
        q: crate::ports::MetricsQuery<'_>,
    ) -> Result<crate::analysis::MetricData, PortError> {
        let cloud = &self.cloud;
        sim_call!(cloud, "metrics.read", false, |w| {
            let now = w.now;
            Ok(w.metrics
                .as_ref()
                .map(|m| m.read(&w, q.from, now))
                .unwrap_or_default())
        })
    }
}

#[async_trait]
impl Fleet for SimCloud {
    async fn status(&self, slot: Slot) -> Result<FleetStatus, PortError> {
        sim_call!(self, "fleet.status", false, |w| Ok(w.fleet_status(slot)))
    }

    async fn provision(&self, slot: Slot, green: &Green, desired: u32) -> Result<(), PortError> {
        sim_call!(self, "fleet.provision", true, |w| w
            .provision_now(slot, &green.revision, desired)
            .map_err(|m| PortError::new(
                "fleet.provision",
                ErrorKind::Invalid,
                m
            )))
    }

    async fn remove(&self, slot: Slot) -> Result<(), PortError> {
        sim_call!(self, "fleet.remove", true, |w| {
            w.remove_now(slot);
            Ok(())
        })
    }
}

#[async_trait]
impl Router for SimCloud {
    async fn weights(&self) -> Result<SlotWeights, PortError> {
        let read = sim_call!(self, "router.weights", false, |w| Ok(w.router));
        if read.is_ok() {
            let mut w = self.world();
            let now = w.now;
            w.trace.weight_reads.push(now);
        }
        read
    }

    async fn set_weights(&self, weights: SlotWeights) -> Result<(), PortError> {
        let paced = weights.full_slot().is_none();
        sim_call!(self, "router.set_weights", true, paced: paced, |w| {
            // Like ALB and Route 53, the router refuses weights it cannot hold.
            if !weights.is_valid() {
                Err(PortError::new(
                    "router.set_weights",
                    ErrorKind::Invalid,
                    format!("invalid weights {weights}"),
                ))
            } else {
                let rate = if w.quiet { 0.0 } else { w.faults.no_take_rate };
                let no_take = rate > 0.0 && w.rng.random_bool(rate);
                if no_take {
                    let lat = w.latency.1;
                    w.excused += 2 * lat;
                } else {
                    w.set_weights_now(weights);
                }
                Ok(())
            }
        })
    }

    async fn test_weights(&self) -> Result<Option<SlotWeights>, PortError> {
        sim_call!(self, "router.test_weights", false, |w| Ok(w.test_router))
    }

    async fn set_test_weights(&self, weights: SlotWeights) -> Result<(), PortError> {
        sim_call!(self, "router.set_test_weights", true, |w| {
            if w.test_router.is_none() || !weights.is_valid() {
                return Err(PortError::new(
                    "router.set_test_weights",
                    ErrorKind::Invalid,
                    format!("no test listener, or invalid weights {weights}"),
                ));
            }
            w.test_router = Some(weights);
            let now = w.now;
            w.trace.test_changes.push((now, weights));
            Ok(())
        })
    }
}

#[async_trait]
impl Gate for SimCloud {
    async fn read(&self) -> Result<Vec<GateReading>, PortError> {
        let read = sim_call!(self, "gate.read", false, |w| {
            let now = w.now;
            let readings: Vec<GateReading> = w
                .gates
                .iter()
                .map(|g| {
                    let (state, since) = g.state_at(now);
                    GateReading {
                        name: g.name.clone(),
                        state,
                        reason: format!("simulated {state} since {}", fmt_time(since)),
                        since,
                    }
                })
                .collect();
            if readings.iter().any(|r| r.state == GateState::Alarm) {
                w.trace.alarms_pending.push(now);
            }
            Ok(readings)
        });
        let mut w = self.world();
        let now = w.now;
        w.trace.gate_reads.push((now, read.is_ok()));
        read
    }
}

#[async_trait]
impl crate::ports::Rollout for SimCloud {
    async fn state(&self, _green: &Green) -> Result<crate::model::RolloutState, PortError> {
        sim_call!(self, "rollout.state", false, |w| {
            let now = w.now;
            Ok(w.rollout.as_ref().expect("a rolling world").state_at(now))
        })
    }

    async fn start(&self, _green: &Green) -> Result<(), PortError> {
        sim_call!(self, "rollout.start", true, |w| {
            let now = w.now;
            let r = w.rollout.as_mut().expect("a rolling world");
            if r.reverted.is_some() {
                r.started_after_revert = true;
            }
            // A new attempt only when none is under way or done (a retry of a
            // landed start is a no-op, as for UpdateService to the same task
            // definition); after the platform's own rollback, it starts again.
            let again = matches!(
                r.state_at(now),
                crate::model::RolloutState::RolledBack { .. }
            );
            if r.started.is_none() || again {
                r.started = Some(now);
            }
            r.first_started.get_or_insert(now);
            Ok(())
        })
    }

    async fn revert(&self) -> Result<(), PortError> {
        sim_call!(self, "rollout.revert", true, |w| {
            let now = w.now;
            let r = w.rollout.as_mut().expect("a rolling world");
            if r.reverted.is_none() {
                r.reverted = Some(now);
            }
            Ok(())
        })
    }

    async fn preflight(&self, _green: &Green) -> (crate::ports::Checks, Option<String>) {
        let w = self.world();
        match &w.fleets[0] {
            Some(f) => (crate::ports::Checks::default(), Some(f.revision.clone())),
            None => (
                crate::ports::Checks::problems(vec!["fleet: no service to update".into()]),
                None,
            ),
        }
    }
}

/// Hooks are local child processes, not cloud calls: no injected faults, no
/// latency; a run takes its scripted virtual time.
#[async_trait]
impl Hooks for SimCloud {
    fn state(&self, deployment: &str, run: &HookRun) -> HookState {
        let w = self.world();
        let Some(r) = w
            .trace
            .hook_runs
            .iter()
            .rev()
            .find(|r| r.deployment == deployment && r.run == *run)
        else {
            return HookState::NotStarted;
        };
        let took_ms = r.ends - r.started;
        match (w.now >= r.ends, r.passes) {
            (false, _) => HookState::Running,
            (true, true) => HookState::Passed { took_ms },
            (true, false) => HookState::Failed {
                detail: "simulated hook exited with 1".into(),
                took_ms,
            },
        }
    }

    async fn start(
        &self,
        deployment: &str,
        run: &HookRun,
        _env: Vec<(String, String)>,
    ) -> Result<(), PortError> {
        if self.state(deployment, run) != HookState::NotStarted {
            return Ok(());
        }
        let mut w = self.world();
        let Some(script) = w.hooks.get(&run.point).copied() else {
            return Err(PortError::new(
                "hook.start",
                ErrorKind::Invalid,
                format!("no simulated {} hook", run.point),
            ));
        };
        let now = w.now;
        w.trace.hook_runs.push(HookRunTrace {
            deployment: deployment.to_string(),
            run: run.clone(),
            started: now,
            ends: now + script.took_ms,
            passes: script.passes,
        });
        Ok(())
    }
}

#[async_trait]
impl Ledger for SimCloud {
    async fn load(&self) -> Result<Option<Record>, PortError> {
        sim_call!(self, "ledger.load", false, |w| Ok(w.ledger.as_ref().map(
            |(json, version)| {
                let mut r: Record =
                    serde_json::from_str(json).expect("sim ledger holds valid JSON");
                r.version = *version;
                r
            }
        )))
    }

    async fn store(&self, record: &Record) -> Result<u64, PortError> {
        sim_call!(self, "ledger.store", true, |w| {
            let current = w.ledger.as_ref().map_or(0, |(_, v)| *v);
            if current != record.version {
                Err(PortError::new(
                    "ledger.store",
                    ErrorKind::Conflict,
                    format!("record is at version {current}, not {}", record.version),
                ))
            } else {
                let json = serde_json::to_string(record).expect("records serialise");
                let phase = match &record.phase {
                    Phase::Done { outcome, .. } => format!("done:{}", outcome.class()),
                    p => p.name().to_string(),
                };
                let now = w.now;
                if w.trace.ledger_phases.last().map(|(_, p)| p) != Some(&phase) {
                    w.trace.ledger_phases.push((now, phase));
                }
                w.ledger = Some((json, current + 1));
                Ok(current + 1)
            }
        })
    }
}

#[async_trait]
impl Clock for SimCloud {
    fn now(&self) -> Millis {
        self.world().now
    }

    async fn sleep_until(&self, t: Millis) {
        if self.world().killed {
            // A dead process does not wake: not the gate watch racing a
            // call that never returns, nor anything else.
            return die().await;
        }
        let mut w = self.world();
        if t > w.now {
            if w.after_fault {
                // A backoff after an injected fault: excused from reaction-time bounds.
                w.excused += t - w.now;
            }
            w.now = t;
        }
        w.after_fault = false;
    }
}

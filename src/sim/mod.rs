//! The simulated cloud: in-memory fleet, router, gates and ledger on a
//! virtual clock, with seeded fault injection.
//!
//! Every call advances virtual time by a latency. Faults: transient errors
//! (throttling, 5xx) on any call, timeouts (a mutating call may have taken
//! effect anyway), weight changes that answer OK but do not take, a green
//! that is slow or never healthy, gates that flap, and a process killed at
//! any call: the call's future never completes (its effect may or may not
//! have happened), the way `kill -9` looks from the cloud's side.
//!
//! The world keeps a trace of what happened, for [`check`] to hold against
//! the safety invariants.

pub mod check;
pub mod metrics;
pub mod release;
pub mod scenario;
mod shared_time;

pub use shared_time::SharedTime;

mod ports;

use crate::engine::{Phase, Record};
use crate::hooks::{HookPoint, HookRun, HookState};
use crate::model::{
    fmt_time, FleetStatus, GateReading, GateState, Green, Millis, Slot, SlotWeights,
};
use crate::ports::{Clock, ErrorKind, Fleet, Gate, Hooks, Ledger, PortError, Ports, Router};
use async_trait::async_trait;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex, MutexGuard};

/// Injected fault rates, each per call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Transient error (throttling / 5xx) without effect.
    pub error_rate: f64,
    /// Timeout: time passes, then a transient error; a mutating call took effect half the time.
    pub timeout_rate: f64,
    /// A weight change answers OK but does not take.
    pub no_take_rate: f64,
    /// The call is put off by the client's rate limit: not sent, answered
    /// with how long to wait (`ErrorKind::Paced`).
    pub paced_rate: f64,
}

/// A fleet in one slot.
#[derive(Debug, Clone, PartialEq)]
pub struct SimFleet {
    /// Its revision.
    pub revision: String,
    /// Instances.
    pub desired: u32,
    /// When it becomes healthy; `None`: never.
    pub healthy_at: Option<Millis>,
}

/// A gate with a scripted state over time.
#[derive(Debug, Clone, PartialEq)]
pub struct SimGate {
    /// Name.
    pub name: String,
    /// `(from, state)` changes, sorted by time; OK before the first.
    pub script: Vec<(Millis, GateState)>,
}

impl SimGate {
    /// The state at `t`, and since when.
    pub fn state_at(&self, t: Millis) -> (GateState, Millis) {
        self.script
            .iter()
            .rev()
            .find(|(from, _)| *from <= t)
            .map_or((GateState::Ok, 0), |(from, s)| (*s, *from))
    }
}

/// A scripted hook: how long each run takes, and whether it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimHook {
    /// Virtual time one run takes.
    pub took_ms: Millis,
    /// Whether its runs pass.
    pub passes: bool,
}

/// How a simulated rolling update ends on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimRolloutEnd {
    /// Everything runs the new revision.
    Completes,
    /// It fails part-way and stays so (circuit breaker without rollback).
    Fails,
    /// The platform rolls it back on its own.
    PlatformRollsBack,
}

/// A simulated in-place rolling update of the fleet in slot A.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRollout {
    /// How long the update takes.
    pub takes: Millis,
    /// How it ends.
    pub ends: SimRolloutEnd,
    /// How long putting the previous revision back takes.
    pub revert_takes: Millis,
    /// When teal started it (the latest attempt).
    pub started: Option<Millis>,
    /// When teal first asked to start it.
    pub first_started: Option<Millis>,
    /// When teal asked to put the previous revision back.
    pub reverted: Option<Millis>,
    /// teal asked to start it after asking to revert it.
    pub started_after_revert: bool,
}

impl SimRollout {
    /// A rollout not started yet.
    pub fn new(takes: Millis, ends: SimRolloutEnd, revert_takes: Millis) -> SimRollout {
        SimRollout {
            takes,
            ends,
            revert_takes,
            started: None,
            first_started: None,
            reverted: None,
            started_after_revert: false,
        }
    }

    /// Its state at `now`.
    pub fn state_at(&self, now: Millis) -> crate::model::RolloutState {
        use crate::model::RolloutState as R;
        let detail = |s: &str| s.to_string();
        if let Some(r) = self.reverted {
            return if now < r + self.revert_takes {
                R::RollingBack {
                    detail: detail("simulated revert"),
                }
            } else {
                // Like ECS, the platform forgets a finished revert.
                R::NotStarted
            };
        }
        let Some(s) = self.started else {
            return R::NotStarted;
        };
        if now < s + self.takes {
            return R::InProgress {
                percent: Some(((now - s) * 100 / self.takes.max(1)) as u8),
                detail: String::new(),
            };
        }
        match self.ends {
            SimRolloutEnd::Completes => R::Completed,
            SimRolloutEnd::Fails => R::Failed {
                detail: detail("simulated: tasks failed to start"),
            },
            SimRolloutEnd::PlatformRollsBack if now < s + self.takes + self.revert_takes => {
                R::RollingBack {
                    detail: detail("simulated circuit breaker"),
                }
            }
            SimRolloutEnd::PlatformRollsBack => R::RolledBack {
                detail: detail("simulated circuit breaker"),
            },
        }
    }

    /// Whether the previous revision runs everywhere at `now`.
    pub fn previous_runs(&self, now: Millis) -> bool {
        use crate::model::RolloutState as R;
        matches!(self.state_at(now), R::NotStarted | R::RolledBack { .. })
    }
}

/// A hook run the world saw start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRunTrace {
    /// The deployment.
    pub deployment: String,
    /// The run.
    pub run: HookRun,
    /// When it started.
    pub started: Millis,
    /// When it ends.
    pub ends: Millis,
    /// Whether it passes.
    pub passes: bool,
}

/// A weight change that took effect.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightChange {
    /// When.
    pub at: Millis,
    /// Before.
    pub from: SlotWeights,
    /// After.
    pub to: SlotWeights,
    /// Per slot: a fleet existed and was fully healthy at that moment.
    pub healthy: [bool; 2],
}

/// A fleet removal that took effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Removal {
    /// When.
    pub at: Millis,
    /// Which slot.
    pub slot: Slot,
    /// The slot's weight at that moment.
    pub weight: u8,
    /// How long the other slot had held 100% at that moment.
    pub other_full_for: Option<Millis>,
}

/// What happened, for the invariant checker.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Every applied weight change.
    pub weight_changes: Vec<WeightChange>,
    /// Every applied removal.
    pub removals: Vec<Removal>,
    /// Every stored ledger phase, with its time.
    pub ledger_phases: Vec<(Millis, String)>,
    /// Gate reads that returned ALARM to a driver that went on to decide.
    pub alarms_seen: Vec<Millis>,
    /// Every gate read as it ended: when, and whether it answered.
    pub gate_reads: Vec<(Millis, bool)>,
    /// Gate reads that returned ALARM in the current step (committed when the step completes).
    pub alarms_pending: Vec<Millis>,
    /// `(time, excused)`: cumulative time spent on injected faults, sampled at every call.
    pub excused_log: Vec<(Millis, Millis)>,
    /// Every hook run started. A run outlives a killed process here: the next
    /// process finds it and waits for it (a real one would start it again).
    pub hook_runs: Vec<HookRunTrace>,
    /// Every test listener change that took effect: when, and to what.
    pub test_changes: Vec<(Millis, SlotWeights)>,
    /// Every weight change made by hand (not by teal): when.
    pub hand_changes: Vec<Millis>,
    /// Every read of the weights that answered: when it ended.
    pub weight_reads: Vec<Millis>,
    /// Every kill of the process: when.
    pub kills: Vec<Millis>,
    /// `(time, paced)`: cumulative time waited for the rate limit, sampled
    /// at every call (not excused from the gates' bound: gates are never
    /// put off; it stretches the staleness bound of invariant S).
    pub paced_log: Vec<(Millis, Millis)>,
    /// Every call put off by the rate limit (returned to the driver as
    /// `ErrorKind::Paced`): when, and which (invariant Q).
    pub put_off: Vec<(Millis, String)>,
}

/// Someone moves traffic by hand once during the run: at `at`, if green
/// (slot B) then carries part of it, `by` points of it go back to blue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandChange {
    /// When it is due.
    pub at: Millis,
    /// Points of green's weight moved to blue (green keeps at least 1).
    pub by: u8,
}

/// The simulated world.
#[derive(Debug)]
pub struct World {
    /// Virtual now.
    pub now: Millis,
    rng: ChaCha8Rng,
    /// Injected faults (off while `quiet`).
    pub faults: Faults,
    /// Call latency range.
    pub latency: (Millis, Millis),
    /// How long a timed-out call takes.
    pub timeout_ms: Millis,
    /// Router weights.
    pub router: SlotWeights,
    /// When each slot last reached 100%.
    pub full_since: [Option<Millis>; 2],
    /// Fleets by slot.
    pub fleets: [Option<SimFleet>; 2],
    /// How long a new fleet takes to become healthy; `None`: never.
    pub healthy_after: Option<Millis>,
    /// Gates.
    pub gates: Vec<SimGate>,
    /// The ledger: the record as JSON, and its version.
    pub ledger: Option<(String, u64)>,
    /// Scripted hooks, by point.
    pub hooks: std::collections::BTreeMap<HookPoint, SimHook>,
    /// The test listener's weights, when the router has one.
    pub test_router: Option<SlotWeights>,
    /// The rolling update, for a rolling scenario.
    pub rollout: Option<SimRollout>,
    /// Canary analysis's series, for a scenario with analysis.
    pub metrics: Option<metrics::SimMetrics>,
    /// Calls so far.
    pub calls: u64,
    /// Mutating calls so far.
    pub mutating_calls: u64,
    /// Kill the process at this call number.
    pub kill_at: Option<u64>,
    /// The process was killed (its call never returns).
    pub killed: bool,
    /// No faults and no kills (for observers such as a second, refused driver).
    pub quiet: bool,
    /// Time spent on injected faults so far.
    pub excused: Millis,
    /// The last call failed by injection: the driver's next sleep is a backoff.
    after_fault: bool,
    /// A weight change by hand still to come.
    pub hand_change: Option<HandChange>,
    /// Time the driver waited for the rate limit so far.
    pub paced: Millis,
    /// When a call was put off by the rate limit, until the next call other
    /// than a gate read begins (the put-off call's retry, as a rule): the
    /// whole wait, the gate reads the driver makes through it included.
    paced_from: Option<Millis>,
    /// What happened.
    pub trace: Trace,
}

/// What an injected fault does to one call.
enum Fate {
    Normal,
    Error,
    /// Put off for this long, not sent.
    Paced(Millis),
    Timeout {
        took_effect: bool,
    },
    Killed {
        took_effect: bool,
    },
}

impl World {
    /// A world at `now` with blue (`revision`, `instances`) healthy in slot A
    /// taking all traffic, and these gates.
    pub fn new(
        seed: u64,
        now: Millis,
        revision: &str,
        instances: u32,
        gates: Vec<SimGate>,
    ) -> World {
        World {
            now,
            rng: ChaCha8Rng::seed_from_u64(seed),
            faults: Faults::default(),
            latency: (20, 150),
            timeout_ms: 5_000,
            router: SlotWeights { a: 100, b: 0 },
            full_since: [Some(now), None],
            fleets: [
                Some(SimFleet {
                    revision: revision.to_string(),
                    desired: instances,
                    healthy_at: Some(now),
                }),
                None,
            ],
            healthy_after: Some(30_000),
            gates,
            ledger: None,
            hooks: Default::default(),
            test_router: None,
            rollout: None,
            metrics: None,
            calls: 0,
            mutating_calls: 0,
            kill_at: None,
            killed: false,
            quiet: false,
            excused: 0,
            after_fault: false,
            hand_change: None,
            paced: 0,
            paced_from: None,
            trace: Trace::default(),
        }
    }

    /// The status of a slot's fleet now.
    pub fn fleet_status(&self, slot: Slot) -> FleetStatus {
        match &self.fleets[slot.index()] {
            None => FleetStatus::absent(),
            Some(f) => FleetStatus {
                exists: true,
                revision: Some(f.revision.clone()),
                desired: f.desired,
                healthy: if f.healthy_at.is_some_and(|t| t <= self.now) {
                    f.desired
                } else {
                    0
                },
                name: None,
            },
        }
    }

    /// The stored record, decoded.
    pub fn record(&self) -> Option<Record> {
        self.ledger.as_ref().map(|(json, _)| {
            serde_json::from_str(json).expect("the sim ledger holds valid records")
        })
    }

    /// Begin a call: advance time, count it, and draw its fate.
    /// `op` names the call: the gates' reads (and canary analysis's, read
    /// with them) are never put off by the rate limit, as on AWS, where
    /// they take their tokens at once (`aws::pace::urgent`); nor are calls
    /// with `paced` off.
    fn begin(&mut self, op: &str, mutating: bool, paced: bool) -> Fate {
        self.calls += 1;
        if mutating {
            self.mutating_calls += 1;
        }
        let latency = self.rng.random_range(self.latency.0..=self.latency.1);
        if !matches!(op, "gate.read" | "metrics.read") {
            if let Some(from) = self.paced_from.take() {
                self.paced += self.now.saturating_sub(from);
            }
        }
        self.now += latency;
        self.trace.excused_log.push((self.now, self.excused));
        self.trace.paced_log.push((self.now, self.paced));
        self.change_by_hand();
        if self.quiet {
            self.after_fault = false;
            return Fate::Normal;
        }
        if self.kill_at == Some(self.calls) {
            self.killed = true;
            self.trace.kills.push(self.now);
            return Fate::Killed {
                took_effect: mutating && self.rng.random_bool(0.5),
            };
        }
        let roll: f64 = self.rng.random();
        let pace =
            paced && !crate::ports::is_urgent() && !matches!(op, "gate.read" | "metrics.read");
        let put_off =
            pace && self.faults.paced_rate > 0.0 && self.rng.random_bool(self.faults.paced_rate);
        let wait = put_off.then(|| self.rng.random_range(50..=3_000));
        let fate = if let (Some(after), false) = (wait, crate::ports::is_patient()) {
            // Put off before it is sent: no time on the wire.
            self.now -= latency;
            Fate::Paced(after)
        } else {
            if let Some(after) = wait {
                // Patient: the wait is made in the adapter, then the call.
                self.now += after;
            }
            if roll < self.faults.error_rate {
                Fate::Error
            } else if roll < self.faults.error_rate + self.faults.timeout_rate {
                self.now += self.timeout_ms;
                Fate::Timeout {
                    took_effect: mutating && self.rng.random_bool(0.5),
                }
            } else {
                Fate::Normal
            }
        };
        // Waiting out the rate limit is teal's own choice, not a fault: the
        // wait is not excused, so the gates must be read through it.
        self.after_fault = !matches!(fate, Fate::Normal | Fate::Paced(_));
        if matches!(fate, Fate::Paced(_)) {
            self.paced_from.get_or_insert(self.now);
            self.trace.put_off.push((self.now, op.to_string()));
        }
        if self.after_fault {
            self.excused += latency
                + if matches!(fate, Fate::Timeout { .. }) {
                    self.timeout_ms
                } else {
                    0
                };
        }
        fate
    }

    /// The hand change, once due and while green carries part of the traffic.
    fn change_by_hand(&mut self) {
        let Some(h) = self.hand_change.filter(|h| self.now >= h.at) else {
            return;
        };
        let green = self.router.b;
        if green == 0 || green == 100 {
            return;
        }
        let to = green.saturating_sub(h.by).max(1);
        self.hand_change = None;
        if to != green {
            self.trace.hand_changes.push(self.now);
            self.set_weights_now(SlotWeights { a: 100 - to, b: to });
        }
    }

    fn set_weights_now(&mut self, w: SlotWeights) {
        let healthy = [Slot::A, Slot::B].map(|s| self.fleet_status(s).fully_healthy());
        self.trace.weight_changes.push(WeightChange {
            at: self.now,
            from: self.router,
            to: w,
            healthy,
        });
        for s in Slot::BOTH {
            let full = w.get(s) == 100;
            if full && self.full_since[s.index()].is_none() {
                self.full_since[s.index()] = Some(self.now);
            } else if !full {
                self.full_since[s.index()] = None;
            }
        }
        self.router = w;
    }

    fn remove_now(&mut self, slot: Slot) {
        if self.fleets[slot.index()].is_some() {
            let other_full_for = self.full_since[slot.other().index()].map(|t| self.now - t);
            self.trace.removals.push(Removal {
                at: self.now,
                slot,
                weight: self.router.get(slot),
                other_full_for,
            });
        }
        self.fleets[slot.index()] = None;
    }

    fn provision_now(&mut self, slot: Slot, revision: &str, desired: u32) -> Result<(), String> {
        match &self.fleets[slot.index()] {
            Some(f) if f.revision == revision => Ok(()),
            Some(f) => Err(format!("slot {slot} already runs {}", f.revision)),
            None => {
                let healthy_at = self.healthy_after.map(|d| self.now + d);
                self.fleets[slot.index()] = Some(SimFleet {
                    revision: revision.to_string(),
                    desired,
                    healthy_at,
                });
                Ok(())
            }
        }
    }
}

/// A handle on a shared simulated world; implements every port.
#[derive(Debug, Clone)]
pub struct SimCloud(Arc<Mutex<World>>);

/// The outcome of starting a call: go on, fail, be put off, or never return.
enum Begun {
    Go { took_effect: bool, fail: bool },
    Paced(Millis),
    Killed,
}

impl SimCloud {
    /// Wrap a world.
    pub fn new(world: World) -> SimCloud {
        SimCloud(Arc::new(Mutex::new(world)))
    }

    /// Lock the world (tests and the checker look inside).
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().expect("sim world lock")
    }

    /// Ports backed by this world.
    pub fn ports(&self) -> Ports {
        // One lock, released before the ports are built.
        let (rolling, spec) = {
            let w = self.world();
            (
                w.rollout.is_some(),
                w.metrics.as_ref().map(|m| m.spec.clone()),
            )
        };
        Ports {
            fleet: Arc::new(self.clone()),
            router: Arc::new(self.clone()),
            gate: Arc::new(self.clone()),
            ledger: Arc::new(self.clone()),
            hooks: Arc::new(self.clone()),
            rollout: rolling.then(|| Arc::new(self.clone()) as Arc<dyn crate::ports::Rollout>),
            metrics: spec.map(|spec| {
                Arc::new(ports::SimMetricsPort {
                    cloud: self.clone(),
                    spec,
                }) as Arc<dyn crate::ports::Metrics>
            }),
            clock: Arc::new(self.clone()),
        }
    }

    fn begin(&self, op: &str, mutating: bool, paced: bool) -> Begun {
        match self.world().begin(op, mutating, paced) {
            Fate::Normal => Begun::Go {
                took_effect: true,
                fail: false,
            },
            Fate::Error => Begun::Go {
                took_effect: false,
                fail: true,
            },
            Fate::Paced(after) => Begun::Paced(after),
            Fate::Timeout { took_effect } => Begun::Go {
                took_effect,
                fail: true,
            },
            Fate::Killed { took_effect } => {
                if !took_effect {
                    return Begun::Killed;
                }
                Begun::Go {
                    took_effect: true,
                    fail: true,
                }
            }
        }
    }
}

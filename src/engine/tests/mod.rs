//! The engine's tests, by the rules they exercise; this file holds the
//! scripted world they share.

mod analysis;
mod approval;
mod blue_green;
mod hooks;
mod operator;
mod rolling;

use super::*;
use crate::model::{FleetStatus, GateReading, GateState, Slot};
use crate::strategy::{expand_canary, expand_linear, Step};
use std::collections::BTreeMap;

pub(super) const S: Millis = 1_000;
pub(super) const M: Millis = 60 * S;

pub(super) fn plan(steps: Vec<Step>) -> Plan {
    Plan {
        strategy: "test".into(),
        steps,
        keep_alive_ms: 5 * M,
        poll_ms: 10 * S,
        green_healthy_timeout_ms: 2 * M,
        insufficient_data: InsufficientData::Ok,
        hooks: vec![],
        test_traffic: false,
        rolling: None,
        analysis: None,
    }
}

pub(super) fn record(steps: Vec<Step>, now: Millis) -> Record {
    Record {
        schema: RECORD_SCHEMA,
        id: "d-test".into(),
        service: "web".into(),
        revision: "v2".into(),
        blue_revision: Some("v1".into()),
        green: None,
        build: None,
        green_slot: Slot::B,
        plan: plan(steps),
        phase: Phase::Provisioning {
            since: now,
            green_seen: None,
        },
        hold: None,
        started_at: now,
        updated_at: now,
        lock: None,
        inbox: vec![],
        replies: vec![],
        hooks_passed: vec![],
        approvals: vec![],
        release: None,
        judgment: None,
        version: 0,
    }
}

/// Green with all 3 of 3 targets healthy.
pub(super) fn healthy_green() -> FleetStatus {
    FleetStatus {
        exists: true,
        revision: Some("v2".into()),
        desired: 3,
        healthy: 3,
        name: None,
    }
}

/// A tiny world the engine's actions apply to, to check whole runs.
pub(super) struct World {
    pub(super) now: Millis,
    pub(super) weights: Weights,
    pub(super) green: Option<(u32, Millis)>, // desired, healthy from
    pub(super) green_never_healthy: bool,
    pub(super) blue: bool,
    pub(super) alarm_from: Option<Millis>,
    pub(super) gates_unreadable: bool,
    /// Hook runs started: when, and whether they pass (each takes 20s).
    pub(super) hook_runs: Vec<(HookRun, Millis, bool)>,
    /// The point whose hook fails.
    pub(super) failing_hook: Option<HookPoint>,
    /// The alarm fires 5s after this point's hook starts.
    pub(super) alarm_during_hook: Option<HookPoint>,
    /// What the current pending hook run is (set by `run` before observing).
    pub(super) pending: Option<HookRun>,
    /// The test listener, when there is one.
    pub(super) test: Option<Weights>,
    /// The bake the engine waits to have judged (set by `run` before observing).
    pub(super) judging: Option<crate::analysis::Window>,
    /// Each step's verdict (a step not listed passes); `None`: the metrics
    /// cannot be read.
    pub(super) verdicts: Option<BTreeMap<usize, crate::analysis::StepOutcome>>,
    /// Judgments handed to the engine: the window, and when.
    pub(super) judged: Vec<(crate::analysis::Window, Millis)>,
    pub(super) log: Vec<(Millis, Action)>,
}

impl World {
    pub(super) fn new() -> World {
        World {
            now: 0,
            weights: Weights::ALL_BLUE,
            green: None,
            green_never_healthy: false,
            blue: true,
            alarm_from: None,
            gates_unreadable: false,
            hook_runs: vec![],
            failing_hook: None,
            alarm_during_hook: None,
            pending: None,
            test: None,
            judging: None,
            verdicts: Some(BTreeMap::new()),
            judged: vec![],
            log: vec![],
        }
    }

    pub(super) fn observe(&self) -> Observation {
        let green = match self.green {
            None => FleetStatus::absent(),
            Some((desired, from)) => FleetStatus {
                exists: true,
                revision: Some("v2".into()),
                desired,
                healthy: if !self.green_never_healthy && self.now >= from {
                    desired
                } else {
                    0
                },
                name: None,
            },
        };
        let blue = if self.blue {
            FleetStatus {
                exists: true,
                revision: Some("v1".into()),
                desired: 3,
                healthy: 3,
                name: None,
            }
        } else {
            FleetStatus::absent()
        };
        let alarm = self.alarm_from.is_some_and(|t| self.now >= t);
        let gates = (!self.gates_unreadable).then(|| {
            vec![GateReading {
                name: "web-5xx".into(),
                state: if alarm {
                    GateState::Alarm
                } else {
                    GateState::Ok
                },
                reason: "Threshold crossed".into(),
                since: self.alarm_from.unwrap_or(0),
            }]
        });
        let hook = self.pending.clone().map(|run| {
            let state = match self.hook_runs.iter().find(|(r, _, _)| *r == run) {
                None => HookState::NotStarted,
                Some((_, at, _)) if self.now < at + 20 * S => HookState::Running,
                Some((_, _, true)) => HookState::Passed { took_ms: 20 * S },
                Some((_, _, false)) => HookState::Failed {
                    detail: "exited with 1".into(),
                    took_ms: 20 * S,
                },
            };
            (run, state)
        });
        Observation {
            weights: self.weights,
            green,
            blue,
            gates,
            hook,
            test: self.test,
            rollout: None,
            judgment: self.judgment(),
        }
    }

    fn judgment(&self) -> Option<crate::analysis::StepJudgment> {
        let window = self.judging?;
        let outcome = self
            .verdicts
            .as_ref()?
            .get(&window.step)
            .copied()
            .unwrap_or(crate::analysis::StepOutcome::Pass);
        Some(crate::analysis::StepJudgment {
            window,
            outcome,
            score: Some(match outcome {
                crate::analysis::StepOutcome::Pass => 100.0,
                crate::analysis::StepOutcome::Marginal => 80.0,
                crate::analysis::StepOutcome::Fail => 0.0,
            }),
            metrics: vec![],
        })
    }

    /// Run until the engine finishes; returns the outcome.
    pub(super) fn run(&mut self, engine: &mut Engine) -> Outcome {
        self.run_to(engine, Millis::MAX)
            .expect("no outcome after 10k actions")
    }

    /// Run until the engine finishes (its outcome) or the time reaches `until`.
    pub(super) fn run_to(&mut self, engine: &mut Engine, until: Millis) -> Option<Outcome> {
        for _ in 0..10_000 {
            if self.now >= until {
                return None;
            }
            self.pending = engine.pending_hook();
            self.judging = engine.judgment_window();
            let obs = self.observe();
            if let Some(j) = &obs.judgment {
                self.judged.push((j.window, self.now));
            }
            let action = engine.decide(&obs, self.now);
            self.log.push((self.now, action.clone()));
            match action {
                Action::ProvisionGreen { desired } => {
                    self.green = Some((desired, self.now + 30 * S))
                }
                Action::SetWeights { weights } => {
                    assert!(
                        weights.green == 0 || obs.green.healthy > 0,
                        "green got traffic while unhealthy"
                    );
                    self.weights = weights;
                }
                Action::SetTestWeights { weights } => self.test = Some(weights),
                Action::StartRollout | Action::RevertRollout => {
                    unreachable!("a blue/green plan never asks for a rolling update")
                }
                Action::RemoveGreen => {
                    assert_eq!(
                        self.weights.green, 0,
                        "green removed while carrying traffic"
                    );
                    assert!(
                        self.test.is_none_or(|t| t.green == 0),
                        "green removed while the test listener forwards to it"
                    );
                    self.green = None;
                }
                Action::RetireBlue => {
                    assert_eq!(self.weights.blue, 0, "blue retired while carrying traffic");
                    self.blue = false;
                }
                Action::Wait { until } => {
                    assert!(until > self.now, "wait must move time forward");
                    self.now = until;
                }
                Action::StartHook { run } => {
                    if !self.hook_runs.iter().any(|(r, _, _)| *r == run) {
                        let passes = self.failing_hook != Some(run.point);
                        if self.alarm_during_hook == Some(run.point) {
                            self.alarm_from = Some(self.now + 5 * S);
                        }
                        self.hook_runs.push((run, self.now, passes));
                    }
                }
                Action::Finish { outcome } => return Some(outcome),
            }
            self.now += 100; // every call takes a little time
        }
        None
    }

    /// When `action` was first asked for.
    pub(super) fn first(&self, action: &Action) -> Millis {
        self.log
            .iter()
            .find(|(_, a)| a == action)
            .expect("action was asked for")
            .0
    }

    pub(super) fn weight_changes(&self) -> Vec<(Millis, u8)> {
        self.log
            .iter()
            .filter_map(|(t, a)| match a {
                Action::SetWeights { weights } => Some((*t, weights.green)),
                _ => None,
            })
            .collect()
    }
}

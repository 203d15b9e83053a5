//! Seeded random scenarios and the harness that runs one to its end, checking
//! every invariant after every driver step.
//!
//! A seed fixes everything: strategy, fleet timing, gate scripts, fault rates,
//! kill points, a signal, a second driver, bad input. The same seed always
//! replays the same run (`teal sim --seed N`, or `TEAL_SIM_SEED=N` for the
//! test suite).

mod report;
mod run;

use report::check_fate;
pub use report::{render, RunReport};
use run::LOCK_TTL_MS;
pub use run::{run_scenario, run_seed};

use super::check::{alarm_episodes, Checker, Context};
use super::metrics::SimMetrics;
use super::{Faults, SimCloud, SimGate, SimHook, SimRollout, SimRolloutEnd, World};
use crate::driver::{
    submit, Driver, DriverError, EventSink, NewDeployment, Progress, Retry, Settings, Submitted,
};
use crate::engine::{Command, Outcome, Plan, Reason};
use crate::events::Event;
use crate::hooks::HookPoint;
use crate::model::InsufficientData;
use crate::model::{GateState, Millis, Slot, SlotWeights};
use crate::strategy::{expand_canary, expand_linear, Approval, OnTimeout, Step};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};

/// Virtual start time of every run (2026-01-01T00:00:00Z).
pub const T0: Millis = 1_767_225_600_000;
const S: Millis = 1_000;
const MIN: Millis = 60 * S;

/// Input made bad on purpose: the run must be refused before any mutating call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadInput {
    /// The config names a gate that does not exist.
    MissingGate,
    /// A gate is already in ALARM.
    GateAlreadyInAlarm,
    /// The idle slot already holds a fleet.
    IdleSlotOccupied,
    /// The router splits traffic with no deployment in flight.
    RouterSplit,
    /// No fleet in the slot that takes traffic.
    BlueMissing,
}

/// Everything a seed decides.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed.
    pub seed: u64,
    /// The plan (strategy expanded).
    pub plan: Plan,
    /// Blue's instances.
    pub instances: u32,
    /// Time for a new fleet to become healthy; `None`: never.
    pub healthy_after: Option<Millis>,
    /// Gates and their scripts (times relative to the start).
    pub gates: Vec<SimGate>,
    /// Fault rates.
    pub faults: Faults,
    /// Call latency range.
    pub latency: (Millis, Millis),
    /// Calls between kills (each kill then resume by a new process).
    pub kills: Vec<u64>,
    /// After a kill, wait for the lock to lapse instead of `--force`.
    pub wait_out_lock: bool,
    /// Send SIGTERM before this step.
    pub interrupt_at_step: Option<usize>,
    /// Try a second `teal deploy` before this step.
    pub second_driver_at_step: Option<usize>,
    /// Bad input.
    pub bad_input: Option<BadInput>,
    /// Operator commands, each sent from another process before this
    /// driver step (or, with `reconcile_every`, before this pass).
    pub commands: Vec<(usize, Command)>,
    /// Driven by `teal deploy --detach` and then `teal reconcile --once`
    /// every this often, instead of one process waiting throughout.
    pub reconcile_every: Option<Millis>,
    /// Scripted lifecycle hooks (the plan lists their points).
    pub hooks: BTreeMap<HookPoint, SimHook>,
    /// A rolling update in place instead of blue/green, and how it goes.
    pub rollout: Option<SimRollout>,
    /// Canary analysis, and the series it judges.
    pub analysis: Option<SimMetrics>,
    /// A weight moved by hand during the run.
    pub hand_change: Option<super::HandChange>,
    /// An operator who sends `teal approve` this long after a step begins
    /// to wait for approval; `None`: nobody approves.
    pub approver: Option<Millis>,
}

impl Scenario {
    /// The scenario of a seed.
    pub fn generate(seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let steps: Vec<Step> = match rng.random_range(0..4) {
            0 => expand_canary(rng.random_range(1..=50), rng.random_range(0..=10) * MIN),
            1 => expand_linear(rng.random_range(5..=50), rng.random_range(1..=18) * 10 * S),
            2 => vec![Step::new(100, 0)],
            _ => {
                let n = rng.random_range(1..=4);
                let mut ws: Vec<u8> = (0..n).map(|_| rng.random_range(1..100)).collect();
                ws.sort_unstable();
                ws.dedup();
                let mut steps: Vec<Step> = ws
                    .into_iter()
                    .map(|w| Step::new(w, rng.random_range(0..=300) * S))
                    .collect();
                steps.push(Step::new(100, rng.random_range(0..=2) * MIN));
                steps
            }
        };
        let poll_ms = *[1, 2, 5, 10, 15, 30]
            .map(|s| s * S)
            .get(rng.random_range(0..6))
            .expect("in range");
        let timeout = rng.random_range(1..=10) * MIN;
        let plan = Plan {
            strategy: format!("sim-{seed}"),
            steps,
            keep_alive_ms: rng.random_range(0..=15) * MIN,
            poll_ms,
            green_healthy_timeout_ms: timeout,
            insufficient_data: if rng.random_bool(0.3) {
                InsufficientData::Alarm
            } else {
                InsufficientData::Ok
            },
            hooks: vec![],
            test_traffic: false,
            rolling: None,
            analysis: None,
        };
        let healthy_after = match rng.random_range(0..20) {
            0 | 1 => None,
            2 => Some(timeout + rng.random_range(1..=60) * S),
            _ => Some(rng.random_range(0..=timeout * 8 / 10)),
        };
        let est_len = healthy_after.unwrap_or(timeout)
            + plan.steps.iter().map(|s| s.bake_ms).sum::<Millis>()
            + plan.keep_alive_ms;
        let gates = (0..rng.random_range(0..=3))
            .map(|i| SimGate {
                name: format!("gate-{i}"),
                script: gate_script(&mut rng, est_len),
            })
            .collect();
        let faults = if rng.random_bool(0.35) {
            Faults::default()
        } else {
            Faults {
                error_rate: rng.random_range(0.0..0.15),
                timeout_rate: rng.random_range(0.0..0.05),
                no_take_rate: if rng.random_bool(0.5) {
                    rng.random_range(0.0..0.15)
                } else {
                    0.0
                },
                paced_rate: 0.0,
            }
        };
        let latency = (rng.random_range(5..=50), rng.random_range(60..=300));
        let est_calls = est_len / poll_ms * 4 + 30;
        let kills = if rng.random_bool(0.4) {
            (0..rng.random_range(1..=3))
                .map(|_| rng.random_range(1..=est_calls))
                .collect()
        } else {
            vec![]
        };
        let bad_input = rng.random_bool(0.08).then(|| match rng.random_range(0..5) {
            0 => BadInput::MissingGate,
            1 => BadInput::GateAlreadyInAlarm,
            2 => BadInput::IdleSlotOccupied,
            3 => BadInput::RouterSplit,
            _ => BadInput::BlueMissing,
        });
        Scenario {
            seed,
            plan,
            instances: rng.random_range(1..=4),
            healthy_after,
            gates,
            faults,
            latency,
            wait_out_lock: rng.random_bool(0.5),
            kills,
            interrupt_at_step: rng.random_bool(0.05).then(|| rng.random_range(1..=60)),
            second_driver_at_step: rng.random_bool(0.2).then(|| rng.random_range(1..=60)),
            bad_input,
            commands: vec![],
            reconcile_every: None,
            hooks: BTreeMap::new(),
            rollout: None,
            analysis: None,
            hand_change: None,
            approver: None,
        }
        .with_operator(seed)
        .with_hooks(seed)
        .with_rolling(seed)
        .with_analysis(seed)
        .with_hand_change(seed, est_len)
        .with_pacing(seed)
        .with_approvals(seed)
    }

    /// A step that waits for approval in a quarter of the runs (a rolling
    /// update's bake too), from its own stream: with or without a timeout,
    /// each `on_timeout`, and an operator who approves after a while, or
    /// nobody (then only where the timeout ends the wait on its own).
    fn with_approvals(mut self, seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xa9_9a07e);
        if !rng.random_bool(0.25) {
            return self;
        }
        let step = rng.random_range(0..self.plan.steps.len());
        let timeout_ms = rng
            .random_bool(0.7)
            .then(|| self.plan.poll_ms * rng.random_range(1..=40));
        let on_timeout =
            [OnTimeout::Rollback, OnTimeout::Promote, OnTimeout::Hold][rng.random_range(0..3)];
        self.plan.steps[step].approve = Some(Approval {
            timeout_ms,
            on_timeout,
        });
        let ends_alone = timeout_ms.is_some() && on_timeout != OnTimeout::Hold;
        if !ends_alone || rng.random_bool(0.7) {
            self.approver = Some(rng.random_range(0..=10 * MIN));
        }
        self
    }

    /// Whether a step waits for approval, with a timeout that rolls back.
    fn approval_may_roll_back(&self) -> bool {
        self.plan.steps.iter().any(|s| {
            s.approve
                .is_some_and(|a| a.timeout_ms.is_some() && a.on_timeout == OnTimeout::Rollback)
        })
    }

    /// Calls put off by the client's rate limit in a third of the runs,
    /// from their own stream. Never a reason to halt: not in `has_faults`.
    fn with_pacing(mut self, seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9ace_d0ff);
        if rng.random_bool(0.3) {
            self.faults.paced_rate = rng.random_range(0.0..0.3);
        }
        self
    }

    /// A weight moved by hand in a quarter of the runs, from its own stream.
    /// Not with canary analysis: invariant A reads every rise of green's
    /// weight from a step as teal's promotion, and putting back a weight
    /// lowered by hand is one.
    fn with_hand_change(mut self, seed: u64, est_len: Millis) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4a4d_c4a6);
        if self.analysis.is_none() && rng.random_bool(0.25) {
            self.hand_change = Some(super::HandChange {
                at: T0 + rng.random_range(0..=est_len),
                by: rng.random_range(1..=10),
            });
        }
        self
    }

    /// A fifth of the blue/green runs judge each step by canary analysis,
    /// from its own stream: one or two metrics with random checks, a green
    /// equal to blue in half of them, slightly or plainly worse in the rest;
    /// a marginal judgment always has a timeout (nobody else would end it).
    fn with_analysis(mut self, seed: u64) -> Scenario {
        use crate::analysis::judge::{MetricCheck, Scoring};
        use crate::analysis::mann_whitney::Alternative;
        use crate::analysis::spec::{MetricSpec, Query, Source};
        use crate::analysis::{AnalysisSpec, MarginalAction, OnMarginal};
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0a7a_1515);
        if self.rollout.is_some() || !rng.random_bool(0.2) {
            return self;
        }
        let period_ms = [10 * S, 30 * S, MIN][rng.random_range(0..3)];
        let lag_max = rng.random_range(0..=period_ms);
        let late_ms = lag_max + rng.random_range(0..=1) * period_ms;
        let metrics = (0..rng.random_range(1..=2))
            .map(|i| {
                let name = ["errors", "latency"][i].to_string();
                let bounded = rng.random_bool(0.2);
                MetricSpec {
                    check: MetricCheck {
                        name: name.clone(),
                        worse: Alternative::Greater,
                        confidence: rng.random_range(0.9..0.999),
                        allowed_effect: rng.random_range(0.0..0.3),
                        critical: rng.random_bool(0.5),
                        must_have_data: rng.random_bool(0.3),
                        min_points: rng.random_range(3..=15),
                        group: name.clone(),
                    },
                    compare: true,
                    max: bounded.then(|| rng.random_range(0.05..0.5)),
                    min: None,
                    source: Source::Stat(Query {
                        namespace: "Sim".into(),
                        metric: name,
                        stat: "Average".into(),
                        dimensions: vec![],
                    }),
                    preset: None,
                }
            })
            .collect();
        let pass = rng.random_range(60.0..=100.0);
        let spec = AnalysisSpec {
            metrics,
            scoring: Scoring {
                weights: BTreeMap::new(),
                pass,
                marginal: rng.random_range(0.0..=pass),
            },
            period_ms,
            late_ms,
            on_marginal: OnMarginal {
                timeout_ms: Some(rng.random_range(1..=20) * MIN),
                action: if rng.random_bool(0.5) {
                    MarginalAction::Rollback
                } else {
                    MarginalAction::Promote
                },
            },
        };
        self.plan.analysis = Some(crate::engine::Judging {
            late_ms,
            on_marginal: spec.on_marginal,
        });
        self.analysis = Some(SimMetrics {
            spec,
            seed: rng.random(),
            base: 0.1,
            noise: rng.random_range(0.05..0.5),
            green_factor: match rng.random_range(0..4) {
                0 | 1 => 1.0,
                2 => rng.random_range(1.05..1.5),
                _ => rng.random_range(2.0..10.0),
            },
            lag_max,
            blue_revision: "v1".into(),
        });
        self
    }

    /// A fifth of the runs update in place (rolling) instead: the same gates,
    /// faults, kills, operators and hooks (those a rolling update has); no
    /// slots to prepare.
    fn with_rolling(mut self, seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0011_1ee7);
        if !rng.random_bool(0.2) {
            return self;
        }
        let bake = self.plan.steps.last().map_or(0, |s| s.bake_ms);
        self.plan.rolling = Some(crate::strategy::Rolling {
            min_healthy_percent: 100,
            max_percent: 200,
            bake_ms: bake,
            step: None,
            approve: None,
        });
        self.plan.steps = vec![Step::new(100, bake)];
        // A rolling update runs before-traffic and after-step hooks only.
        let rolling_points = [HookPoint::BeforeTraffic, HookPoint::AfterStep];
        self.plan.hooks.retain(|p| rolling_points.contains(p));
        self.plan.test_traffic = false;
        self.hooks.retain(|p, _| rolling_points.contains(p));
        let ends = match rng.random_range(0..20) {
            0..=13 => SimRolloutEnd::Completes,
            14..=16 => SimRolloutEnd::Fails,
            _ => SimRolloutEnd::PlatformRollsBack,
        };
        self.rollout = Some(SimRollout::new(
            rng.random_range(0..=self.plan.green_healthy_timeout_ms * 12 / 10),
            ends,
            rng.random_range(0..=5) * MIN,
        ));
        // Slots mean nothing to a rolling update: their bad inputs do not apply.
        if matches!(
            self.bad_input,
            Some(BadInput::IdleSlotOccupied | BadInput::RouterSplit)
        ) {
            self.bad_input = Some(BadInput::MissingGate);
        }
        self
    }

    /// Lifecycle hooks, from their own stream like the operator's: a quarter
    /// of the runs have some, a fifth of those hooks fail.
    fn with_hooks(mut self, seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x400c_5eed);
        if rng.random_bool(0.25) {
            self.plan.test_traffic = rng.random_bool(0.5);
            for point in HookPoint::ALL {
                let possible = point != HookPoint::AfterTestTraffic || self.plan.test_traffic;
                if possible && rng.random_bool(0.6) {
                    self.plan.hooks.push(point);
                    self.hooks.insert(
                        point,
                        SimHook {
                            took_ms: rng.random_range(0..=180) * S,
                            passes: !rng.random_bool(0.2),
                        },
                    );
                }
            }
        }
        self
    }

    /// Operator commands and reconcile passes, drawn from their own stream
    /// so that the rest of a seed's scenario stays as it was before they existed.
    fn with_operator(mut self, seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0be7_a70e);
        if rng.random_bool(0.15) {
            self.reconcile_every = Some([30 * S, MIN, 2 * MIN, 5 * MIN][rng.random_range(0..4)]);
        }
        if rng.random_bool(0.3) {
            let mut at: Vec<usize> = (0..rng.random_range(1..=3))
                .map(|_| rng.random_range(1..=80))
                .collect();
            at.sort_unstable();
            for step in at {
                let cmd = match rng.random_range(0..10) {
                    0..=2 => Command::Shift {
                        green: rng.random_range(0..=100),
                        ignore_gates: false,
                    },
                    3 => Command::Pause,
                    4 => Command::Resume,
                    5 => Command::Promote,
                    6 => Command::PromoteFull,
                    7 => Command::Retire,
                    _ => Command::Rollback,
                };
                self.commands.push((step, cmd));
            }
            // A hold ends with a resume, or the run would wait for ever.
            let holds = self
                .commands
                .iter()
                .any(|(_, c)| matches!(c, Command::Shift { .. } | Command::Pause));
            if holds {
                let last = self.commands.last().map_or(0, |(s, _)| *s);
                self.commands
                    .push((last + rng.random_range(1..=40), Command::Resume));
            }
        }
        self
    }

    fn has_command(&self, f: impl Fn(&Command) -> bool) -> bool {
        self.commands.iter().any(|(_, c)| f(c))
    }

    /// Whether any fault that can legitimately halt a run is injected.
    fn has_faults(&self) -> bool {
        let halting = Faults {
            paced_rate: 0.0,
            ..self.faults
        };
        halting != Faults::default()
    }

    /// The outcome class the run must reach whatever kills happen, when the
    /// scenario fixes it: green never healthy and no gate trouble before the
    /// timeout → rolled back; no gate ever failing and green healthy → succeeded.
    fn fate(&self) -> Option<&'static str> {
        let fails = |s: GateState| {
            s == GateState::Alarm
                || (s == GateState::InsufficientData
                    && self.plan.insufficient_data == InsufficientData::Alarm)
        };
        let gate_trouble = self
            .gates
            .iter()
            .any(|g| g.script.iter().any(|(_, s)| fails(*s)));
        let operator_rollback = self.has_command(|c| *c == Command::Rollback);
        // An approval's timeout may roll back, given when the approver acts.
        let operator_rollback = operator_rollback || self.approval_may_roll_back();
        let failing_hook = self.hooks.values().any(|h| !h.passes);
        if let Some(r) = &self.rollout {
            if gate_trouble
                || self.interrupt_at_step.is_some()
                || self.bad_input.is_some()
                || operator_rollback
            {
                return None;
            }
            // A failing hook rolls back before the update starts or after it baked.
            if failing_hook {
                return Some("rolled_back");
            }
            let timeout = self.plan.green_healthy_timeout_ms;
            return match r.ends {
                SimRolloutEnd::Completes if r.takes + MIN < timeout => Some("succeeded"),
                SimRolloutEnd::Completes if r.takes <= timeout + self.late_slack() => None,
                _ => Some("rolled_back"),
            };
        }
        // A judgment may roll back (an equal green too, now and then), and
        // so may a bound on green.
        let judged = self.analysis.as_ref().is_some_and(|m| {
            self.plan.steps.iter().any(|s| s.weight < 100)
                || m.spec.metrics.iter().any(|x| x.max.is_some())
        });
        if failing_hook
            || judged
            || self.interrupt_at_step.is_some()
            || self.bad_input.is_some()
            || gate_trouble
            || operator_rollback
        {
            return None;
        }
        match self.healthy_after {
            // Healthy this close to the timeout may or may not count, given latencies.
            Some(h) if h + MIN < self.plan.green_healthy_timeout_ms => Some("succeeded"),
            Some(h) if h <= self.plan.green_healthy_timeout_ms + self.late_slack() => None,
            _ => Some("rolled_back"),
        }
    }

    /// How late past the timeout a green (or an update) may become ready
    /// and still be taken: a minute of latencies and retries, plus every
    /// stretch in which no process watches. Between reconcile passes, and
    /// while a killed process's lock is waited out, nobody sees the deadline
    /// pass; the first process to look after it may find the work done, and
    /// the engine takes what it observes (done, gates fine) over a deadline
    /// it was not awake for. Before, the slack was a minute whatever the
    /// schedule, and seeds such as 1008436 (an update done at 600 s, a 480 s
    /// timeout, passes every 120 s) and 1015383 (a process killed at 80% of
    /// the update, its lock waited out past the deadline) were judged wrongly.
    fn late_slack(&self) -> Millis {
        let waited_out = match self.wait_out_lock {
            true => self.kills.len() as Millis * LOCK_TTL_MS,
            false => 0,
        };
        MIN + self.reconcile_every.unwrap_or(0) + waited_out
    }
}

fn gate_script(rng: &mut ChaCha8Rng, est_len: Millis) -> Vec<(Millis, GateState)> {
    // Onsets from 5s on: an alarm already failing at the start is bad input, tested apart.
    let start = T0 + 5 * S;
    let horizon = est_len.max(MIN) * 12 / 10;
    match rng.random_range(0..20) {
        0..=10 => vec![],
        11..=14 => vec![(start + rng.random_range(0..horizon), GateState::Alarm)],
        15 => vec![(
            start + rng.random_range(0..horizon),
            GateState::InsufficientData,
        )],
        _ => {
            let mut t = start;
            let mut script = Vec::new();
            for _ in 0..rng.random_range(1..=4) {
                t += rng.random_range(0..horizon / 2);
                script.push((t, GateState::Alarm));
                t += rng.random_range(1..=120) * S;
                script.push((t, GateState::Ok));
            }
            script
        }
    }
}

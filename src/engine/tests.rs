use super::*;
use crate::model::{FleetStatus, GateReading, GateState, Slot};
use crate::strategy::{expand_canary, expand_linear, Step};

const S: Millis = 1_000;
const M: Millis = 60 * S;

fn plan(steps: Vec<Step>) -> Plan {
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
    }
}

fn record(steps: Vec<Step>, now: Millis) -> Record {
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
        version: 0,
    }
}

/// Green with all 3 of 3 targets healthy.
fn healthy_green() -> FleetStatus {
    FleetStatus {
        exists: true,
        revision: Some("v2".into()),
        desired: 3,
        healthy: 3,
    }
}

/// A tiny world the engine's actions apply to, to check whole runs.
struct World {
    now: Millis,
    weights: Weights,
    green: Option<(u32, Millis)>, // desired, healthy from
    green_never_healthy: bool,
    blue: bool,
    alarm_from: Option<Millis>,
    gates_unreadable: bool,
    /// Hook runs started: when, and whether they pass (each takes 20s).
    hook_runs: Vec<(HookRun, Millis, bool)>,
    /// The point whose hook fails.
    failing_hook: Option<HookPoint>,
    /// The alarm fires 5s after this point's hook starts.
    alarm_during_hook: Option<HookPoint>,
    /// What the current pending hook run is (set by `run` before observing).
    pending: Option<HookRun>,
    /// The test listener, when there is one.
    test: Option<Weights>,
    log: Vec<(Millis, Action)>,
}

impl World {
    fn new() -> World {
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
            log: vec![],
        }
    }

    fn observe(&self) -> Observation {
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
            },
        };
        let blue = if self.blue {
            FleetStatus {
                exists: true,
                revision: Some("v1".into()),
                desired: 3,
                healthy: 3,
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
        }
    }

    /// Run until the engine finishes; returns the outcome.
    fn run(&mut self, engine: &mut Engine) -> Outcome {
        for _ in 0..10_000 {
            self.pending = engine.pending_hook();
            let obs = self.observe();
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
                Action::Finish { outcome } => return outcome,
            }
            self.now += 100; // every call takes a little time
        }
        panic!("no outcome after 10k actions");
    }

    /// When `action` was first asked for.
    fn first(&self, action: &Action) -> Millis {
        self.log
            .iter()
            .find(|(_, a)| a == action)
            .expect("action was asked for")
            .0
    }

    fn weight_changes(&self) -> Vec<(Millis, u8)> {
        self.log
            .iter()
            .filter_map(|(t, a)| match a {
                Action::SetWeights { weights } => Some((*t, weights.green)),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn canary_runs_to_success_with_bake_and_keep_alive() {
    let mut w = World::new();
    let mut e = Engine::new(record(expand_canary(10, 5 * M), 0));
    assert_eq!(w.run(&mut e), Outcome::Succeeded);
    let changes = w.weight_changes();
    assert_eq!(
        changes.iter().map(|c| c.1).collect::<Vec<_>>(),
        vec![10, 100]
    );
    // 10% only after green is healthy (30s after provisioning).
    assert!(changes[0].0 >= 30 * S);
    // 100% only after the 5m bake at 10%.
    assert!(changes[1].0 >= changes[0].0 + 5 * M);
    let retire_at = w.first(&Action::RetireBlue);
    assert!(
        retire_at >= changes[1].0 + 5 * M,
        "blue retired before the keep-alive"
    );
    assert!(!w.blue);
}

#[test]
fn linear_visits_every_step_in_order() {
    let mut w = World::new();
    let mut e = Engine::new(record(expand_linear(25, M), 0));
    assert_eq!(w.run(&mut e), Outcome::Succeeded);
    assert_eq!(
        w.weight_changes().iter().map(|c| c.1).collect::<Vec<_>>(),
        vec![25, 50, 75, 100]
    );
}

#[test]
fn alarm_during_bake_rolls_back_at_once_and_removes_green() {
    let mut w = World::new();
    w.alarm_from = Some(2 * M);
    let mut e = Engine::new(record(expand_canary(10, 5 * M), 0));
    let outcome = w.run(&mut e);
    let Outcome::RolledBack {
        reason: Reason::GateFailed { gate, state, .. },
    } = outcome
    else {
        panic!("expected a gate rollback, got {outcome:?}")
    };
    assert_eq!((gate.as_str(), state), ("web-5xx", GateState::Alarm));
    // The first decision at or after the alarm sets 100% blue, no later than one poll.
    let t = w.first(&Action::SetWeights {
        weights: Weights::ALL_BLUE,
    });
    assert!((2 * M..=2 * M + 10 * S).contains(&t), "rollback at {t}");
    assert!(w.green.is_none() && w.blue && w.weights == Weights::ALL_BLUE);
}

#[test]
fn green_never_healthy_times_out_without_traffic() {
    let mut w = World::new();
    w.green_never_healthy = true;
    let mut e = Engine::new(record(expand_canary(10, 5 * M), 0));
    let outcome = w.run(&mut e);
    assert!(
        matches!(
            outcome,
            Outcome::RolledBack {
                reason: Reason::GreenNeverHealthy {
                    healthy: 0,
                    desired: 3,
                    ..
                }
            }
        ),
        "{outcome:?}"
    );
    assert!(
        w.weight_changes().iter().all(|c| c.1 == 0),
        "green got traffic: {:?}",
        w.weight_changes()
    );
    assert!(w.green.is_none());
}

#[test]
fn insufficient_data_counts_as_configured() {
    for (setting, fails) in [
        (InsufficientData::Ok, false),
        (InsufficientData::Alarm, true),
    ] {
        let mut rec = record(expand_canary(10, M), 0);
        rec.plan.insufficient_data = setting;
        let mut e = Engine::new(rec);
        let mut obs = World::new().observe();
        obs.gates.as_mut().unwrap()[0].state = GateState::InsufficientData;
        // No traffic and no green yet: a failed gate ends the run right away.
        let rolled_back = matches!(
            e.decide(&obs, 0),
            Action::Finish {
                outcome: Outcome::RolledBack { .. }
            }
        );
        assert_eq!(rolled_back, fails, "{setting:?}");
    }
}

#[test]
fn unread_gates_never_advance_a_step() {
    let mut e = Engine::new(record(expand_canary(10, M), 0));
    e.rec.phase = Phase::Shifting {
        step: 0,
        reached: Some(0),
    };
    let mut obs = World::new().observe();
    obs.weights = Weights::to_green(10);
    obs.green = healthy_green();
    obs.gates = None;
    let action = e.decide(&obs, 10 * M);
    assert!(matches!(action, Action::Wait { .. }), "{action:?}");
    assert_eq!(
        e.record().phase,
        Phase::Shifting {
            step: 0,
            reached: Some(0)
        }
    );
}

#[test]
fn traffic_found_on_blue_mid_step_halts_without_reshift_or_removal() {
    // A rollback's weight flip landed but the ledger write did not (process
    // killed): a resumed engine must not send traffic back to green.
    let mut e = Engine::new(record(expand_canary(10, M), 0));
    e.rec.phase = Phase::Shifting {
        step: 0,
        reached: Some(0),
    };
    let mut obs = World::new().observe();
    obs.green = healthy_green();
    let action = e.decide(&obs, 20 * S);
    // Weights are already all blue: the halt ends at once, green untouched.
    assert!(
        matches!(
            action,
            Action::Finish {
                outcome: Outcome::Halted {
                    reason: Reason::TrafficMovedToBlue { .. }
                }
            }
        ),
        "{action:?}"
    );
}

#[test]
fn a_resumed_engine_continues_from_the_record() {
    // Run halfway, serialise the record as the ledger would, continue in a new engine.
    let mut w = World::new();
    let mut e = Engine::new(record(expand_linear(20, M), 0));
    for _ in 0..12 {
        let a = e.decide(&w.observe(), w.now);
        match a {
            Action::ProvisionGreen { desired } => w.green = Some((desired, w.now + 30 * S)),
            Action::SetWeights { weights } => w.weights = weights,
            Action::Wait { until } => w.now = until,
            other => panic!("unexpected {other:?}"),
        }
    }
    let json = serde_json::to_string(e.record()).unwrap();
    let mut resumed = Engine::new(serde_json::from_str(&json).unwrap());
    assert_eq!(resumed.record(), e.record());
    assert_eq!(w.run(&mut resumed), Outcome::Succeeded);
}

#[test]
fn manual_shift_holds_until_resume_and_gates_still_watch() {
    let mut e = Engine::new(record(expand_canary(10, M), 0));
    let mut obs = World::new().observe();
    obs.green = healthy_green();
    e.decide(&obs, 0);
    e.command(
        Command::Shift {
            green: 25,
            ignore_gates: false,
        },
        0,
    )
    .unwrap();
    assert_eq!(
        e.decide(&obs, 0),
        Action::SetWeights {
            weights: Weights::to_green(25)
        }
    );
    obs.weights = Weights::to_green(25);
    // Long past the bake: still holding at 25%.
    e.decide(&obs, 0);
    assert!(matches!(e.decide(&obs, 60 * M), Action::Wait { .. }));
    assert_eq!(e.target(), Some(Weights::to_green(25)));
    // An alarm during the hold still rolls back.
    let mut held = e.clone();
    let mut alarmed = obs.clone();
    alarmed.gates.as_mut().unwrap()[0].state = GateState::Alarm;
    assert_eq!(
        held.decide(&alarmed, 61 * M),
        Action::SetWeights {
            weights: Weights::ALL_BLUE
        }
    );
    // Resume returns to the step's weight and restarts its bake.
    e.command(Command::Resume, 61 * M).unwrap();
    assert_eq!(
        e.decide(&obs, 61 * M),
        Action::SetWeights {
            weights: Weights::to_green(10)
        }
    );
}

#[test]
fn promote_full_still_honours_keep_alive() {
    let mut w = World::new();
    let mut e = Engine::new(record(expand_linear(10, 10 * M), 0));
    // Get to the first step.
    while !matches!(
        e.record().phase,
        Phase::Shifting {
            reached: Some(_),
            ..
        }
    ) {
        let a = e.decide(&w.observe(), w.now);
        match a {
            Action::ProvisionGreen { desired } => w.green = Some((desired, w.now + 30 * S)),
            Action::SetWeights { weights } => w.weights = weights,
            Action::Wait { until } => w.now = until,
            other => panic!("unexpected {other:?}"),
        }
    }
    let promoted_at = w.now;
    e.command(Command::PromoteFull, promoted_at).unwrap();
    assert_eq!(w.run(&mut e), Outcome::Succeeded);
    let full_at = w.first(&Action::SetWeights {
        weights: Weights::ALL_GREEN,
    });
    let retire_at = w.first(&Action::RetireBlue);
    assert!(
        full_at < promoted_at + M,
        "promote --full went straight to 100%"
    );
    assert!(retire_at >= full_at + 5 * M, "keep-alive skipped");
}

#[test]
fn commands_refused_where_they_make_no_sense() {
    let mut e = Engine::new(record(expand_canary(10, M), 0));
    assert!(
        e.command(Command::Promote, 0).is_err(),
        "promote before green is healthy"
    );
    e.rec.phase = Phase::Retiring;
    let err = e.command(Command::Rollback, 0).unwrap_err();
    assert_eq!(err.to_string(), "cannot rollback while the deployment is retiring: blue is being retired; there is no way back");
    e.rec.phase = Phase::Done {
        outcome: Outcome::Halted {
            reason: Reason::BlueGone { at: 0 },
        },
        at: 0,
    };
    assert!(
        e.command(Command::Rollback, 0).is_ok(),
        "a halted deployment can be rolled back"
    );
}

#[test]
fn interrupt_halts_to_blue_but_lets_retirement_finish() {
    let mut e = Engine::new(record(expand_canary(10, M), 0));
    e.rec.phase = Phase::Shifting {
        step: 0,
        reached: Some(0),
    };
    e.interrupt(
        Reason::Interrupted {
            signal: "SIGTERM".into(),
            at: 5,
        },
        5,
    );
    let mut obs = World::new().observe();
    obs.weights = Weights::to_green(10);
    assert_eq!(
        e.decide(&obs, 6),
        Action::SetWeights {
            weights: Weights::ALL_BLUE
        }
    );
    obs.weights = Weights::ALL_BLUE;
    assert!(matches!(
        e.decide(&obs, 7),
        Action::Finish {
            outcome: Outcome::Halted { .. }
        }
    ));

    let mut r = Engine::new(record(expand_canary(10, M), 0));
    r.rec.phase = Phase::Retiring;
    r.interrupt(
        Reason::Interrupted {
            signal: "SIGTERM".into(),
            at: 5,
        },
        5,
    );
    assert_eq!(r.record().phase, Phase::Retiring);
}

#[test]
fn weights_that_do_not_take_halt_with_evidence() {
    let mut e = Engine::new(record(expand_canary(10, M), 0));
    e.rec.phase = Phase::Shifting {
        step: 0,
        reached: None,
    };
    e.weights_did_not_take(Weights::to_green(10), Weights::ALL_BLUE, 9);
    let Phase::Halting {
        reason: Reason::WeightsDidNotTake { set, actual, at: 9 },
    } = e.record().phase.clone()
    else {
        panic!("{:?}", e.record().phase)
    };
    assert_eq!((set.green, actual.green), (10, 0));
}

#[test]
fn a_fleet_of_another_revision_in_the_idle_slot_never_gets_traffic() {
    let mut e = Engine::new(record(expand_canary(10, M), 0));
    let mut obs = World::new().observe();
    obs.green = FleetStatus {
        exists: true,
        revision: Some("v9".into()),
        desired: 3,
        healthy: 3,
    };
    assert!(matches!(
        e.decide(&obs, 0),
        Action::Finish {
            outcome: Outcome::Halted {
                reason: Reason::UnexpectedGreen { .. }
            }
        }
    ));
}

/// An engine whose green is healthy and whose first step's weight was read back.
fn at_first_step(steps: Vec<Step>) -> (Engine, Observation) {
    let mut e = Engine::new(record(steps, 0));
    let mut obs = World::new().observe();
    obs.green = healthy_green();
    let Action::SetWeights { weights } = e.decide(&obs, 0) else {
        panic!("a healthy green gets its first step")
    };
    obs.weights = weights;
    e.decide(&obs, 0);
    (e, obs)
}

#[test]
fn ignore_gates_override_holds_through_an_alarm_until_resume() {
    let (mut e, mut obs) = at_first_step(expand_canary(10, M));
    e.command(
        Command::Shift {
            green: 30,
            ignore_gates: true,
        },
        S,
    )
    .unwrap();
    assert_eq!(
        e.decide(&obs, S),
        Action::SetWeights {
            weights: Weights::to_green(30)
        }
    );
    obs.weights = Weights::to_green(30);
    obs.gates.as_mut().unwrap()[0].state = GateState::Alarm;
    e.decide(&obs, 2 * S);
    assert!(
        matches!(e.decide(&obs, 3 * S), Action::Wait { .. }),
        "the operator's override keeps 30% through the alarm"
    );
    // The override ends with the hold: the same alarm now rolls back.
    e.command(Command::Resume, 4 * S).unwrap();
    assert_eq!(
        e.decide(&obs, 4 * S),
        Action::SetWeights {
            weights: Weights::ALL_BLUE
        }
    );
    assert!(matches!(e.record().phase, Phase::RollingBack { .. }));
}

#[test]
fn shift_before_green_is_healthy_is_refused_except_to_zero() {
    let mut e = Engine::new(record(expand_canary(10, M), 0));
    let shift = |green| Command::Shift {
        green,
        ignore_gates: false,
    };
    let err = e.command(shift(25), 0).unwrap_err();
    assert_eq!(err.why, "green is not healthy yet");
    assert!(e.command(shift(0), 0).is_ok());
}

#[test]
fn retire_only_once_green_holds_all_traffic() {
    let (mut e, mut obs) = at_first_step(expand_canary(10, M));
    let err = e.command(Command::Retire, S).unwrap_err();
    assert_eq!(err.why, "green does not hold 100% yet");
    e.command(Command::PromoteFull, S).unwrap();
    assert!(e.command(Command::Retire, S).is_err(), "not read back yet");
    assert_eq!(
        e.decide(&obs, S),
        Action::SetWeights {
            weights: Weights::ALL_GREEN
        }
    );
    obs.weights = Weights::ALL_GREEN;
    e.decide(&obs, 2 * S);
    assert!(matches!(
        e.record().phase,
        Phase::KeepAlive { since: Some(_) }
    ));
    // The keep-alive is 5 minutes; retire skips the rest of it.
    e.command(Command::Retire, 3 * S).unwrap();
    assert_eq!(e.decide(&obs, 3 * S), Action::RetireBlue);
}

#[test]
fn inbox_requests_are_applied_once_and_answered() {
    let (mut e, obs) = at_first_step(expand_canary(10, M));
    let req = |id: &str, command| Request {
        id: id.into(),
        command,
        by: "ops@laptop:1".into(),
        at: S,
    };
    let stored = vec![req("r-1", Command::Pause), req("r-2", Command::Retire)];
    assert_eq!(e.adopt_inbox(&stored, 7), 2);
    assert_eq!(e.record().version, 7);
    assert!(e.is_dirty());
    e.apply_inbox(2 * S);
    assert_eq!(e.record().hold, Some(Hold::Paused));
    assert!(e.record().inbox.is_empty());
    let replies: Vec<(&str, bool)> = e
        .record()
        .replies
        .iter()
        .map(|r| (r.id.as_str(), r.applied))
        .collect();
    assert_eq!(replies, [("r-1", true), ("r-2", false)]);
    assert!(e.record().replies[1]
        .message
        .contains("green does not hold 100% yet"));
    // Seen again (a stale read of the ledger): not applied twice.
    assert_eq!(e.adopt_inbox(&stored, 8), 0);
    assert!(
        matches!(e.decide(&obs, 10 * M), Action::Wait { .. }),
        "paused"
    );
    // Only the last few replies are kept.
    for i in 0..10 {
        e.adopt_inbox(&[req(&format!("r-x{i}"), Command::Pause)], 9 + i);
        e.apply_inbox(3 * S);
    }
    assert_eq!(e.record().replies.len(), REPLIES_KEPT);
}

fn with_hooks(steps: Vec<Step>, hooks: &[HookPoint]) -> Engine {
    let mut rec = record(steps, 0);
    rec.plan.hooks = hooks.to_vec();
    Engine::new(rec)
}

/// When the run of `run` started.
fn hook_started(w: &World, run: &HookRun) -> Millis {
    w.hook_runs
        .iter()
        .find(|(r, _, _)| r == run)
        .unwrap_or_else(|| panic!("{run} never started"))
        .1
}

#[test]
fn hooks_run_at_their_points_and_hold_the_deployment_until_they_pass() {
    let mut w = World::new();
    let mut e = with_hooks(
        expand_canary(10, 5 * M),
        &[
            HookPoint::BeforeTraffic,
            HookPoint::AfterStep,
            HookPoint::BeforeRetire,
        ],
    );
    assert_eq!(w.run(&mut e), Outcome::Succeeded);
    let runs: Vec<String> = w.hook_runs.iter().map(|(r, _, _)| r.to_string()).collect();
    assert_eq!(
        runs,
        [
            "before-traffic",
            "after-step 1",
            "after-step 2",
            "before-retire"
        ]
    );
    let changes = w.weight_changes();
    // Green's first traffic only after before-traffic ran its 20s.
    let before_traffic = hook_started(&w, &HookRun::at(HookPoint::BeforeTraffic));
    assert!(changes[0].0 >= before_traffic + 20 * S);
    // The next step only after the bake and then the step's hook.
    let after_1 = hook_started(&w, &HookRun::after_step(0));
    assert!(
        after_1 >= changes[0].0 + 5 * M,
        "after-step runs after the bake"
    );
    assert!(changes[1].0 >= after_1 + 20 * S);
    // Blue goes only after the keep-alive and then before-retire.
    let before_retire = hook_started(&w, &HookRun::at(HookPoint::BeforeRetire));
    assert!(before_retire >= changes[1].0 + 5 * M);
    assert!(w.first(&Action::RetireBlue) >= before_retire + 20 * S);
    assert_eq!(
        e.record().hooks_passed.len(),
        4,
        "every passed run is recorded, so a takeover does not repeat it"
    );
}

#[test]
fn a_failing_before_traffic_hook_rolls_back_with_no_weight_moved() {
    let mut w = World::new();
    w.failing_hook = Some(HookPoint::BeforeTraffic);
    let mut e = with_hooks(expand_canary(10, 5 * M), &[HookPoint::BeforeTraffic]);
    let outcome = w.run(&mut e);
    let Outcome::RolledBack {
        reason: Reason::HookFailed { hook, detail, .. },
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(hook, "before-traffic");
    assert_eq!(detail, "exited with 1");
    assert!(w.weight_changes().is_empty(), "{:?}", w.weight_changes());
    assert!(w.green.is_none(), "green removed");
}

#[test]
fn a_failing_after_step_hook_rolls_back_from_the_step() {
    let mut w = World::new();
    w.failing_hook = Some(HookPoint::AfterStep);
    let mut e = with_hooks(expand_canary(10, 5 * M), &[HookPoint::AfterStep]);
    assert!(matches!(
        w.run(&mut e),
        Outcome::RolledBack {
            reason: Reason::HookFailed { .. }
        }
    ));
    let greens: Vec<u8> = w.weight_changes().iter().map(|c| c.1).collect();
    assert_eq!(greens, vec![10, 0], "never past the canary");
}

#[test]
fn a_failing_gate_wins_over_a_running_hook() {
    let mut w = World::new();
    w.alarm_during_hook = Some(HookPoint::BeforeRetire);
    let mut e = with_hooks(expand_canary(10, 5 * M), &[HookPoint::BeforeRetire]);
    let outcome = w.run(&mut e);
    assert!(
        matches!(
            outcome,
            Outcome::RolledBack {
                reason: Reason::GateFailed { .. }
            }
        ),
        "{outcome:?}"
    );
    // Rolled back within a poll of the alarm, not after the hook's 20s.
    let alarm = w.alarm_from.unwrap();
    let back = w.weight_changes().last().copied().unwrap();
    assert_eq!(back.1, 0);
    assert!(back.0 <= alarm + 10 * S + S, "{back:?} vs alarm at {alarm}");
    assert!(w.blue, "blue kept");
}

#[test]
fn the_test_listener_points_at_green_before_its_hook_and_any_production_traffic() {
    let mut w = World::new();
    w.test = Some(Weights::ALL_BLUE);
    let mut rec = record(expand_canary(10, 5 * M), 0);
    rec.plan.test_traffic = true;
    rec.plan.hooks = vec![HookPoint::AfterTestTraffic, HookPoint::BeforeTraffic];
    let mut e = Engine::new(rec);
    assert_eq!(w.run(&mut e), Outcome::Succeeded);
    let test_at = w.first(&Action::SetTestWeights {
        weights: Weights::ALL_GREEN,
    });
    let after_test = hook_started(&w, &HookRun::at(HookPoint::AfterTestTraffic));
    let before = hook_started(&w, &HookRun::at(HookPoint::BeforeTraffic));
    assert!(
        test_at < after_test,
        "the hook runs once green is behind the test listener"
    );
    assert!(after_test + 20 * S <= before, "then before-traffic");
    assert!(
        before + 20 * S <= w.weight_changes()[0].0,
        "then production traffic"
    );
    assert_eq!(w.test, Some(Weights::ALL_GREEN), "left on green, now live");
}

#[test]
fn a_failing_test_traffic_hook_points_the_test_listener_back_before_green_goes() {
    let mut w = World::new();
    w.test = Some(Weights::ALL_BLUE);
    w.failing_hook = Some(HookPoint::AfterTestTraffic);
    let mut rec = record(expand_canary(10, 5 * M), 0);
    rec.plan.test_traffic = true;
    rec.plan.hooks = vec![HookPoint::AfterTestTraffic];
    let mut e = Engine::new(rec);
    assert!(matches!(
        w.run(&mut e),
        Outcome::RolledBack {
            reason: Reason::HookFailed { .. }
        }
    ));
    assert!(w.weight_changes().is_empty(), "no production weight moved");
    assert_eq!(w.test, Some(Weights::ALL_BLUE));
    assert!(w.green.is_none());
}

/// A rolling plan: bake 2m, poll 10s, 5m to finish the update.
fn rolling_engine() -> Engine {
    let mut rec = record(
        vec![Step {
            weight: 100,
            bake_ms: 2 * M,
        }],
        0,
    );
    rec.plan.rolling = Some(crate::strategy::Rolling {
        min_healthy_percent: 100,
        max_percent: 200,
        bake_ms: 2 * M,
        step: None,
    });
    rec.plan.green_healthy_timeout_ms = 5 * M;
    rec.phase = Phase::Updating {
        since: 0,
        started: false,
        seen: false,
        completed: None,
    };
    Engine::new(rec)
}

fn rolling_obs(state: crate::model::RolloutState, alarm: bool) -> Observation {
    Observation {
        weights: Weights::ALL_BLUE,
        green: FleetStatus::default(),
        blue: FleetStatus::default(),
        gates: Some(vec![GateReading {
            name: "web-5xx".into(),
            state: if alarm {
                GateState::Alarm
            } else {
                GateState::Ok
            },
            reason: String::new(),
            since: 0,
        }]),
        hook: None,
        test: None,
        rollout: Some(state),
    }
}

#[test]
fn a_rolling_update_starts_waits_bakes_and_succeeds() {
    use crate::model::RolloutState as R;
    let mut e = rolling_engine();
    assert_eq!(
        e.decide(&rolling_obs(R::NotStarted, false), 0),
        Action::StartRollout
    );
    let running = R::InProgress {
        percent: Some(50),
        detail: String::new(),
    };
    assert_eq!(
        e.decide(&rolling_obs(running, false), 10 * S),
        Action::Wait { until: 20 * S }
    );
    // Completed at 30s: the bake runs two minutes from there.
    assert_eq!(
        e.decide(&rolling_obs(R::Completed, false), 30 * S),
        Action::Wait { until: 40 * S }
    );
    assert!(matches!(
        e.decide(&rolling_obs(R::Completed, false), 30 * S + 2 * M - 1),
        Action::Wait { .. }
    ));
    assert_eq!(
        e.decide(&rolling_obs(R::Completed, false), 30 * S + 2 * M),
        Action::Finish {
            outcome: Outcome::Succeeded
        }
    );
}

#[test]
fn a_failing_gate_during_the_bake_reverts_and_ends_rolled_back() {
    use crate::model::RolloutState as R;
    let mut e = rolling_engine();
    e.decide(&rolling_obs(R::NotStarted, false), 0);
    e.decide(&rolling_obs(R::Completed, false), 10 * S);
    assert_eq!(
        e.decide(&rolling_obs(R::Completed, true), 20 * S),
        Action::RevertRollout
    );
    let back = R::RollingBack {
        detail: String::new(),
    };
    assert!(matches!(
        e.decide(&rolling_obs(back, true), 30 * S),
        Action::Wait { .. }
    ));
    // The previous revision settled: the platform no longer lists ours.
    let Action::Finish {
        outcome:
            Outcome::RolledBack {
                reason: Reason::GateFailed { gate, .. },
            },
    } = e.decide(&rolling_obs(R::NotStarted, false), 40 * S)
    else {
        panic!("{:?}", e.record().phase)
    };
    assert_eq!(gate, "web-5xx", "the gate stays the reason");
}

#[test]
fn a_platform_rollback_is_a_rollback_even_once_the_platform_forgot_it() {
    use crate::model::RolloutState as R;
    let mut e = rolling_engine();
    e.decide(&rolling_obs(R::NotStarted, false), 0);
    let running = R::InProgress {
        percent: None,
        detail: String::new(),
    };
    e.decide(&rolling_obs(running, false), 10 * S);
    // ECS's circuit breaker rolled back and dropped the failed deployment.
    let action = e.decide(&rolling_obs(R::NotStarted, false), 20 * S);
    assert!(
        matches!(
            action,
            Action::Finish {
                outcome: Outcome::RolledBack {
                    reason: Reason::PlatformRolledBack { .. }
                }
            }
        ),
        "{action:?}"
    );
}

#[test]
fn a_rolling_update_that_does_not_finish_in_time_is_reverted() {
    use crate::model::RolloutState as R;
    let mut e = rolling_engine();
    e.decide(&rolling_obs(R::NotStarted, false), 0);
    let running = R::InProgress {
        percent: Some(10),
        detail: String::new(),
    };
    assert_eq!(
        e.decide(&rolling_obs(running, false), 5 * M),
        Action::RevertRollout
    );
    assert!(matches!(
        e.record().phase,
        Phase::RollingBack {
            reason: Reason::RolloutFailed { .. }
        }
    ));
}

#[test]
fn promote_ends_a_rolling_bake_and_shift_is_refused() {
    use crate::model::RolloutState as R;
    let mut e = rolling_engine();
    let t = 60 * M; // an hour in: promote moves the bake's start back by the bake
    assert!(e.command(Command::Promote, t).is_err(), "not finished yet");
    e.decide(&rolling_obs(R::NotStarted, false), t);
    e.decide(&rolling_obs(R::Completed, false), t + 10 * S);
    let shift = e.command(
        Command::Shift {
            green: 50,
            ignore_gates: false,
        },
        t + 20 * S,
    );
    assert!(shift.unwrap_err().why.contains("no traffic split"));
    e.command(Command::Promote, t + 20 * S).unwrap();
    assert_eq!(
        e.decide(&rolling_obs(R::Completed, false), t + 20 * S),
        Action::Finish {
            outcome: Outcome::Succeeded
        }
    );
}

/// A rolling engine with `before_traffic` and `after_step` hooks.
fn rolling_engine_with_hooks() -> Engine {
    let mut e = rolling_engine();
    let mut rec = e.record().clone();
    rec.plan.hooks = vec![HookPoint::BeforeTraffic, HookPoint::AfterStep];
    e = Engine::new(rec);
    e
}

fn with_hook(mut obs: Observation, run: HookRun, state: HookState) -> Observation {
    obs.hook = Some((run, state));
    obs
}

#[test]
fn a_rolling_update_starts_only_after_before_traffic_passed_and_succeeds_only_after_after_step() {
    use crate::model::RolloutState as R;
    let mut e = rolling_engine_with_hooks();
    let before = HookRun::at(HookPoint::BeforeTraffic);
    assert_eq!(e.pending_hook(), Some(before.clone()));
    assert_eq!(
        e.decide(&rolling_obs(R::NotStarted, false), 0),
        Action::StartHook {
            run: before.clone()
        }
    );
    let running = with_hook(
        rolling_obs(R::NotStarted, false),
        before.clone(),
        HookState::Running,
    );
    assert_eq!(e.decide(&running, 5 * S), Action::Wait { until: 15 * S });
    let passed = with_hook(
        rolling_obs(R::NotStarted, false),
        before,
        HookState::Passed { took_ms: 6_000 },
    );
    assert_eq!(e.decide(&passed, 10 * S), Action::StartRollout);
    // Completed and baked: the after-step hook before success.
    e.decide(&rolling_obs(R::Completed, false), 20 * S);
    let after = HookRun::after_step(0);
    assert_eq!(e.pending_hook(), Some(after.clone()));
    assert_eq!(
        e.decide(&rolling_obs(R::Completed, false), 20 * S + 2 * M),
        Action::StartHook { run: after.clone() }
    );
    let passed = with_hook(
        rolling_obs(R::Completed, false),
        after,
        HookState::Passed { took_ms: 1_000 },
    );
    assert_eq!(
        e.decide(&passed, 20 * S + 2 * M + 10 * S),
        Action::Finish {
            outcome: Outcome::Succeeded
        }
    );
}

#[test]
fn a_failing_rolling_hook_rolls_back_before_or_after_the_update() {
    use crate::model::RolloutState as R;
    let failed = |run: HookRun, state: R| {
        with_hook(
            rolling_obs(state, false),
            run,
            HookState::Failed {
                detail: "smoke test: 502".into(),
                took_ms: 1_000,
            },
        )
    };
    // before_traffic fails: nothing was started, nothing to put back.
    let mut e = rolling_engine_with_hooks();
    e.decide(&rolling_obs(R::NotStarted, false), 0);
    let before = HookRun::at(HookPoint::BeforeTraffic);
    let action = e.decide(&failed(before, R::NotStarted), 10 * S);
    let Action::Finish {
        outcome:
            Outcome::RolledBack {
                reason: Reason::HookFailed { hook, .. },
            },
    } = action
    else {
        panic!("{action:?}")
    };
    assert_eq!(hook, "before-traffic");
    // after_step fails once baked: the update is reverted.
    let mut e = rolling_engine();
    e.decide(&rolling_obs(R::NotStarted, false), 0);
    let mut rec = e.record().clone();
    rec.plan.hooks = vec![HookPoint::AfterStep];
    let mut e = Engine::new(rec);
    e.decide(&rolling_obs(R::Completed, false), 10 * S);
    let after = HookRun::after_step(0);
    assert_eq!(
        e.decide(&failed(after, R::Completed), 10 * S + 2 * M),
        Action::RevertRollout
    );
}

#[test]
fn a_takeover_after_a_death_restarts_the_update_clock_and_a_released_pass_does_not() {
    use crate::model::RolloutState as R;
    // Asked for at 0; the process died before it saw the update under way.
    let asked = |e: &mut Engine| {
        assert_eq!(
            e.decide(&rolling_obs(R::NotStarted, false), 0),
            Action::StartRollout
        );
    };
    let timeout = 5 * M;
    let late = timeout + 30 * S;

    // Its lock waited out: the clock restarts at the takeover, so the
    // platform, slow to show the update, still has its five minutes.
    let mut e = rolling_engine();
    asked(&mut e);
    e.taken_over(late - S, true);
    assert_eq!(
        e.decide(&rolling_obs(R::NotStarted, false), late),
        Action::StartRollout,
        "asked again, not timed out"
    );

    // Released in good order by a reconcile pass: the platform's clock ran.
    let mut e = rolling_engine();
    asked(&mut e);
    e.taken_over(late - S, false);
    e.decide(&rolling_obs(R::NotStarted, false), late);
    assert!(
        matches!(
            e.record().phase,
            Phase::RollingBack { .. } | Phase::Done { .. }
        ),
        "the update that never showed timed out: {:?}",
        e.record().phase
    );

    // Seen under way before the death: nothing restarts.
    let mut e = rolling_engine();
    asked(&mut e);
    let running = R::InProgress {
        percent: Some(10),
        detail: String::new(),
    };
    e.decide(&rolling_obs(running.clone(), false), 10 * S);
    e.taken_over(late - S, true);
    e.decide(&rolling_obs(running, false), late);
    assert!(
        matches!(e.record().phase, Phase::RollingBack { .. }),
        "{:?}",
        e.record().phase
    );
}

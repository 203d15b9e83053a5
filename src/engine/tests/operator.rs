//! Operator commands and the inbox.

use super::*;

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
        name: None,
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

#[test]
fn a_release_rollback_records_the_release_and_is_refused_where_rollback_is() {
    let mut e = Engine::new(record(expand_canary(10, M), 0));
    e.rec.phase = Phase::KeepAlive { since: Some(0) };
    e.release_rollback("shop", "api rolled back: gate \"api-5xx\" is ALARM", 7)
        .unwrap();
    let Phase::RollingBack { reason } = &e.rec.phase else {
        panic!("{:?}", e.rec.phase)
    };
    assert_eq!(
        reason.to_string(),
        "release \"shop\" failed: api rolled back: gate \"api-5xx\" is ALARM"
    );
    // The transition carries the same reason (what the events say).
    let t = e.take_transitions();
    assert!(matches!(
        &t.last().unwrap().to,
        Phase::RollingBack {
            reason: Reason::ReleaseFailed { .. }
        }
    ));
    e.rec.phase = Phase::Retiring;
    assert!(
        e.release_rollback("shop", "x", 8).is_err(),
        "past the keep-alive: no way back"
    );
}

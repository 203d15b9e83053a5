//! The blue/green phases: steps, bakes, keep-alive, rollbacks, halts.

use super::*;

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

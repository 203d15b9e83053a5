//! Canary analysis as the engine obeys it: a step's bake is judged once its
//! late data had time to arrive; pass goes on, fail rolls back naming the
//! judgment, marginal holds for a person or its timeout.

use super::*;
use crate::analysis::{MarginalAction, OnMarginal, StepOutcome};

fn judged_record(steps: Vec<Step>, on_marginal: OnMarginal) -> Record {
    let mut rec = record(steps, 0);
    rec.plan.analysis = Some(Judging {
        late_ms: 2 * M,
        on_marginal,
    });
    rec
}

const WAIT_FOR_A_PERSON: OnMarginal = OnMarginal {
    timeout_ms: None,
    action: MarginalAction::Rollback,
};

fn world_with(verdicts: &[(usize, StepOutcome)]) -> World {
    let mut w = World::new();
    w.verdicts = Some(verdicts.iter().copied().collect());
    w
}

/// Observe and decide until `until`, for runs that never finish (a hold,
/// a judgment never read); only the actions of a shift are expected.
fn drive(w: &mut World, e: &mut Engine, until: Millis) {
    while w.now <= until {
        w.judging = e.judgment_window();
        let obs = w.observe();
        match e.decide(&obs, w.now) {
            Action::Wait { until } => w.now = until,
            Action::SetWeights { weights } => w.weights = weights,
            Action::ProvisionGreen { desired } => w.green = Some((desired, w.now + 30 * S)),
            other => panic!("unexpected {other:?}"),
        }
        w.now += 100;
    }
}

#[test]
fn each_step_below_100_is_judged_after_its_bake_and_late_data() {
    let mut w = world_with(&[]);
    let mut e = Engine::new(judged_record(expand_linear(25, 5 * M), WAIT_FOR_A_PERSON));
    assert_eq!(w.run(&mut e), Outcome::Succeeded);
    let changes = w.weight_changes();
    assert_eq!(
        changes.iter().map(|c| c.1).collect::<Vec<_>>(),
        [25, 50, 75, 100]
    );
    // 25, 50, 75 judged; 100% is not (blue has nothing left to compare).
    let steps: Vec<usize> = w.judged.iter().map(|(win, _)| win.step).collect();
    assert_eq!(
        steps
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "{steps:?}"
    );
    for pair in changes.windows(2) {
        // The next weight only after bake (5m) + late data (2m).
        assert!(pair[1].0 >= pair[0].0 + 7 * M, "{changes:?}");
    }
    assert_eq!(e.record().judgment.as_ref().map(|j| j.window.step), Some(2));
}

#[test]
fn a_failed_judgment_rolls_back_with_the_judgment_as_reason() {
    let mut w = world_with(&[(1, StepOutcome::Fail)]);
    let mut e = Engine::new(judged_record(expand_linear(25, 5 * M), WAIT_FOR_A_PERSON));
    let outcome = w.run(&mut e);
    let Outcome::RolledBack {
        reason: Reason::AnalysisFailed { step, detail, .. },
    } = outcome
    else {
        panic!("expected an analysis rollback, got {outcome:?}")
    };
    assert_eq!(step, 1);
    assert!(detail.contains("score 0"), "{detail}");
    assert_eq!(
        w.weight_changes().iter().map(|c| c.1).collect::<Vec<_>>(),
        [25, 50, 0],
        "never past the failed step"
    );
    assert!(w.green.is_none());
}

#[test]
fn no_judgment_means_no_next_step() {
    let mut w = world_with(&[]);
    w.verdicts = None; // metrics unreadable
    let mut e = Engine::new(judged_record(expand_canary(10, 5 * M), WAIT_FOR_A_PERSON));
    drive(&mut w, &mut e, 30 * M);
    assert_eq!(
        w.weights,
        Weights::to_green(10),
        "stays at the unjudged step"
    );
    assert!(w.now > 30 * M);
}

#[test]
fn a_marginal_judgment_holds_until_a_person_promotes() {
    let mut w = world_with(&[(0, StepOutcome::Marginal)]);
    let mut e = Engine::new(judged_record(expand_linear(25, 5 * M), WAIT_FOR_A_PERSON));
    // Run until the hold, then an hour more: nothing moves.
    drive(&mut w, &mut e, 60 * M);
    assert!(matches!(e.record().hold, Some(Hold::Marginal { .. })));
    assert_eq!(w.weights, Weights::to_green(25));
    // A gate during the hold still rolls back...
    let mut held = e.clone();
    w.alarm_from = Some(w.now);
    let obs = w.observe();
    held.decide(&obs, w.now);
    assert!(matches!(held.record().phase, Phase::RollingBack { .. }));
    // ...and a promote goes on to the next step.
    w.alarm_from = None;
    e.command(Command::Promote, w.now).unwrap();
    assert_eq!(e.record().hold, None);
    assert!(matches!(e.record().phase, Phase::Shifting { step: 1, .. }));
}

#[test]
fn a_marginal_hold_times_out_into_its_action() {
    for (action, expect_rollback) in [
        (MarginalAction::Rollback, true),
        (MarginalAction::Promote, false),
    ] {
        let mut w = world_with(&[(0, StepOutcome::Marginal)]);
        let on = OnMarginal {
            timeout_ms: Some(30 * M),
            action,
        };
        let mut e = Engine::new(judged_record(expand_linear(50, 5 * M), on));
        let outcome = w.run(&mut e);
        // Judged when the bake's late data had time: its end plus 2m.
        let held_from = w.judged[0].0.to + 2 * M;
        if expect_rollback {
            let Outcome::RolledBack {
                reason: Reason::MarginalTimedOut { held_ms, step, .. },
            } = outcome
            else {
                panic!("expected a marginal timeout, got {outcome:?}")
            };
            assert_eq!(step, 0);
            assert!((30 * M..30 * M + 10 * S).contains(&held_ms), "{held_ms}");
        } else {
            assert_eq!(outcome, Outcome::Succeeded);
            let to_100 = w.weight_changes()[1].0;
            assert!(to_100 >= held_from + 30 * M && to_100 < held_from + 30 * M + 11 * S);
        }
    }
}

#[test]
fn a_judgment_of_another_bake_is_not_this_ones() {
    let mut e = Engine::new(judged_record(expand_canary(10, 5 * M), WAIT_FOR_A_PERSON));
    e.rec.phase = Phase::Shifting {
        step: 0,
        reached: Some(10 * M),
    };
    let mut w = world_with(&[]);
    w.green = Some((3, 0));
    w.weights = Weights::to_green(10);
    w.now = 20 * M;
    // A judgment of an earlier bake of the same step (the weights drifted and were put back).
    w.judging = Some(crate::analysis::Window {
        step: 0,
        from: 2 * M,
        to: 7 * M,
    });
    let obs = w.observe();
    assert!(matches!(e.decide(&obs, w.now), Action::Wait { .. }));
    assert!(matches!(e.record().phase, Phase::Shifting { step: 0, .. }));
}

#[test]
fn a_marginal_judgment_promoted_by_its_timeout_still_waits_for_the_steps_approval() {
    // The simulator's seed 41314615139: the marginal timeout went straight
    // to the next step, past the step's approval.
    let mut w = world_with(&[(0, StepOutcome::Marginal)]);
    let on = OnMarginal {
        timeout_ms: Some(30 * M),
        action: MarginalAction::Promote,
    };
    let mut steps = expand_linear(50, 5 * M);
    steps[0].approve = Some(crate::strategy::Approval {
        timeout_ms: None,
        on_timeout: crate::strategy::OnTimeout::Rollback,
    });
    let mut e = Engine::new(judged_record(steps, on));
    assert_eq!(w.run_to(&mut e, 5 * 60 * M), None);
    assert!(
        matches!(e.record().hold, Some(Hold::Approval { .. })),
        "{:?}",
        e.record().hold
    );
    assert_eq!(w.weights, Weights::to_green(50));
    e.command(Command::Approve, w.now).unwrap();
    // Approved: on to 100% at once, not held for the judgment again.
    assert_eq!(w.run(&mut e), Outcome::Succeeded);
}

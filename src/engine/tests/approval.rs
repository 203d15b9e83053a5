//! Steps that wait for a person's approval.

use super::*;
use crate::strategy::{Approval, OnTimeout};

/// A canary of 10% baked 1m that waits for approval (`timeout`, `on`).
fn waiting(timeout_ms: Option<Millis>, on_timeout: OnTimeout) -> Engine {
    let mut steps = expand_canary(10, M);
    steps[0].approve = Some(Approval {
        timeout_ms,
        on_timeout,
    });
    Engine::new(record(steps, 0))
}

/// Run `e` in `w` to time `t`, and return the approval wait then, if any.
fn wait_at(e: &mut Engine, w: &mut World, t: Millis) -> Option<(Millis, Option<Millis>)> {
    assert_eq!(w.run_to(e, t), None, "ended before {t}");
    match e.record().hold {
        Some(Hold::Approval { since, until }) => Some((since, until)),
        _ => None,
    }
}

#[test]
fn a_step_waits_after_its_bake_until_approved_and_records_who() {
    let mut e = waiting(None, OnTimeout::Rollback);
    let mut w = World::new();
    let (since, until) = wait_at(&mut e, &mut w, 10 * M).expect("waiting");
    // Green healthy at 30 s, 10% then, baked a minute: the wait began then.
    let reached = w.first(&Action::SetWeights {
        weights: Weights::to_green(10),
    });
    assert!(
        (reached + M..reached + M + 2 * S).contains(&since),
        "{since}"
    );
    assert_eq!(until, None);
    assert_eq!(e.awaited_step(), Some(0));
    // An hour on, still 10%: nothing moves without a person.
    assert!(wait_at(&mut e, &mut w, 70 * M).is_some());
    assert_eq!(w.weights, Weights::to_green(10));
    // A new process (the record alone) keeps waiting, and does not ask again.
    let mut resumed = Engine::new(e.record().clone());
    let obs = w.observe();
    assert!(matches!(resumed.decide(&obs, w.now), Action::Wait { .. }));
    assert_eq!(resumed.record().hold, e.record().hold);
    // Approved: who and when are kept, and the deployment goes on to the end.
    e.command_by(
        Command::Approve,
        "arn:aws:sts::1:assumed-role/ops/ana",
        w.now,
    )
    .unwrap();
    let approvals = e.record().approvals.clone();
    assert_eq!(approvals.len(), 1);
    assert_eq!(
        (approvals[0].step, approvals[0].by.as_str(), approvals[0].at),
        (0, "arn:aws:sts::1:assumed-role/ops/ana", w.now)
    );
    assert_eq!(w.run(&mut e), Outcome::Succeeded);
}

#[test]
fn approve_is_refused_when_nothing_waits_and_rollback_refuses_the_step() {
    let mut e = waiting(None, OnTimeout::Rollback);
    let mut w = World::new();
    // In the bake, before the wait: nothing to approve yet.
    assert_eq!(w.run_to(&mut e, 60 * S), None);
    assert!(e.record().hold.is_none());
    let refused = e.command(Command::Approve, w.now).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("no step is waiting for approval"),
        "{refused}"
    );
    assert!(wait_at(&mut e, &mut w, 10 * M).is_some());
    e.command(Command::Rollback, w.now).unwrap();
    assert!(matches!(w.run(&mut e), Outcome::RolledBack { .. }));
    assert!(e.record().approvals.is_empty());
}

#[test]
fn an_alarm_during_the_wait_rolls_back() {
    let mut e = waiting(None, OnTimeout::Promote);
    let mut w = World::new();
    assert!(wait_at(&mut e, &mut w, 10 * M).is_some());
    w.alarm_from = Some(w.now + 5 * S);
    let outcome = w.run(&mut e);
    assert!(
        matches!(
            outcome,
            Outcome::RolledBack {
                reason: Reason::GateFailed { .. }
            }
        ),
        "{outcome}"
    );
    // Within a poll of the alarm.
    let back = w
        .weight_changes()
        .into_iter()
        .find(|(_, g)| *g == 0)
        .expect("back to blue")
        .0;
    assert!(back <= w.alarm_from.unwrap() + 10 * S + 100, "{back}");
}

#[test]
fn each_on_timeout_acts_at_its_time() {
    let timeout = 30 * M;
    // rollback: at the timeout, back to blue, the reason says so.
    let mut e = waiting(Some(timeout), OnTimeout::Rollback);
    let mut w = World::new();
    let (since, until) = wait_at(&mut e, &mut w, 10 * M).expect("waiting");
    assert_eq!(until, Some(since + timeout));
    assert_eq!(
        wait_at(&mut e, &mut w, since + timeout - 1),
        Some((since, until))
    );
    let outcome = w.run(&mut e);
    let Outcome::RolledBack {
        reason:
            Reason::ApprovalTimedOut {
                step: 0,
                waited_ms,
                at,
            },
    } = outcome
    else {
        panic!("{outcome}")
    };
    assert_eq!(waited_ms, timeout);
    // Acted on at the timeout (the wait ends there; the world's clock adds
    // 100 ms a call), not a poll later.
    assert!(
        (since + timeout..=since + timeout + 100).contains(&at),
        "{at}"
    );

    // promote: goes on at the timeout, the approval recorded as the timeout's.
    let mut e = waiting(Some(timeout), OnTimeout::Promote);
    let mut w = World::new();
    let (since, _) = wait_at(&mut e, &mut w, 10 * M).expect("waiting");
    assert_eq!(w.run(&mut e), Outcome::Succeeded);
    let a = &e.record().approvals[0];
    assert_eq!(a.by, "on_timeout = \"promote\"");
    assert!(
        (since + timeout..=since + timeout + 100).contains(&a.at),
        "{}",
        a.at
    );
    assert!(
        w.first(&Action::SetWeights {
            weights: Weights::ALL_GREEN
        }) >= since + timeout
    );

    // hold: at the timeout the wait goes on with no deadline.
    let mut e = waiting(Some(timeout), OnTimeout::Hold);
    let mut w = World::new();
    let (since, _) = wait_at(&mut e, &mut w, 10 * M).expect("waiting");
    assert_eq!(
        wait_at(&mut e, &mut w, since + timeout + M),
        Some((since, None))
    );
    assert_eq!(
        wait_at(&mut e, &mut w, since + 10 * timeout),
        Some((since, None))
    );
    assert_eq!(w.weights, Weights::to_green(10));
}

#[test]
fn a_rolling_updates_bake_waits_for_approval_before_success() {
    use crate::model::RolloutState as R;
    let mut rec = record(
        vec![Step {
            approve: Some(Approval {
                timeout_ms: None,
                on_timeout: OnTimeout::Rollback,
            }),
            ..Step::new(100, 2 * M)
        }],
        0,
    );
    rec.plan.rolling = Some(crate::strategy::Rolling {
        min_healthy_percent: 100,
        max_percent: 200,
        bake_ms: 2 * M,
        step: None,
        approve: rec.plan.steps[0].approve,
    });
    rec.phase = Phase::Updating {
        since: 0,
        started: false,
        seen: false,
        completed: None,
    };
    let mut e = Engine::new(rec);
    let mut obs = World::new().observe();
    obs.rollout = Some(R::NotStarted);
    assert_eq!(e.decide(&obs, 0), Action::StartRollout);
    obs.rollout = Some(R::Completed);
    e.decide(&obs, 10 * S);
    // Baked, not approved: waits, however long.
    assert!(matches!(
        e.decide(&obs, 10 * S + 2 * M),
        Action::Wait { .. }
    ));
    assert!(matches!(e.decide(&obs, 10 * M), Action::Wait { .. }));
    assert_eq!(e.awaited_step(), Some(0));
    e.command_by(Command::Approve, "ana", 10 * M).unwrap();
    assert_eq!(
        e.decide(&obs, 10 * M + S),
        Action::Finish {
            outcome: Outcome::Succeeded
        }
    );
}

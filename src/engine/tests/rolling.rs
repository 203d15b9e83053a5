//! The rolling update.

use super::*;

/// A rolling plan: bake 2m, poll 10s, 5m to finish the update.
fn rolling_engine() -> Engine {
    let mut rec = record(vec![Step::new(100, 2 * M)], 0);
    rec.plan.rolling = Some(crate::strategy::Rolling {
        min_healthy_percent: 100,
        max_percent: 200,
        bake_ms: 2 * M,
        step: None,
        approve: None,
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
        judgment: None,
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

//! Lifecycle hooks and the test listener.

use super::*;

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

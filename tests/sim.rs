//! Tier 2: thousands of seeded simulated deployments with injected faults,
//! every safety invariant checked after every driver step and at the end.
//!
//! - `cargo test --test sim`: 5,000 seeds (`TEAL_SIM_RUNS=N` for more or fewer),
//!   plus a window `TEAL_SIM_WINDOW=BASE:COUNT` when set: CI sets one derived
//!   from the commit, so every run also explores seeds no run tried before.
//! - `TEAL_SIM_SEED=N cargo test --test sim -- --nocapture`: replay one seed
//!   and print its full event log (also: `teal sim --seed N`).
//! - A soak: `teal sim --seed $(date +%s) --runs 1000000` on a release build.

use teal::engine::{Outcome, Reason};
use teal::events::EventKind;
use teal::sim::scenario::{render, run_seed, RunReport};

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("TEAL_SIM_SEED") {
        return vec![s.parse().expect("TEAL_SIM_SEED must be a number")];
    }
    let runs: u64 = std::env::var("TEAL_SIM_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000);
    let mut seeds: Vec<u64> = (0..runs).collect();
    if let Ok(w) = std::env::var("TEAL_SIM_WINDOW") {
        let (base, count) = w
            .split_once(':')
            .and_then(|(b, c)| Some((b.parse::<u64>().ok()?, c.parse::<u64>().ok()?)))
            .expect("TEAL_SIM_WINDOW is BASE:COUNT");
        println!(
            "window: seeds {base}..{} (replay one: teal sim --seed S)",
            base + count
        );
        seeds.extend(base..base + count);
    }
    seeds
}

/// Run seeds on every core; each run is single-threaded and deterministic.
fn run_all(seeds: &[u64]) -> Vec<RunReport> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    let chunks: Vec<Vec<u64>> = (0..threads)
        .map(|t| seeds.iter().copied().skip(t).step_by(threads).collect())
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|c| scope.spawn(move || c.iter().map(|s| run_seed(*s)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a sim thread panicked"))
            .collect()
    })
}

#[test]
fn every_invariant_holds_across_seeded_faulty_runs() {
    let seeds = seeds();
    let single = seeds.len() == 1;
    let reports = run_all(&seeds);
    let mut failures = Vec::new();
    let (mut succeeded, mut rolled_back, mut halted, mut refused, mut kills) = (0, 0, 0, 0, 0);
    // Operator inputs: commands queued for a running driver and applied by
    // it, rollbacks by an operator, and runs driven by reconcile passes.
    let (mut applied, mut operator_rollbacks, mut reconciled, mut passes) = (0, 0, 0, 0);
    for r in &reports {
        if single {
            println!("{}", render(r));
        }
        match &r.outcome {
            Some(Outcome::Succeeded) => succeeded += 1,
            Some(Outcome::RolledBack { .. }) => rolled_back += 1,
            Some(Outcome::Halted { .. }) => halted += 1,
            None => refused += 1,
        }
        if r.scenario.reconcile_every.is_some() {
            reconciled += usize::from(r.outcome.is_some());
            passes += r.processes;
        } else {
            kills += r.processes.saturating_sub(1);
        }
        applied += r
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Command { .. }))
            .count();
        if let Some(Outcome::RolledBack {
            reason: Reason::Operator { .. },
        }) = &r.outcome
        {
            operator_rollbacks += 1;
        }
        if !r.violations.is_empty() {
            failures.push(r);
        }
    }
    println!(
        "{} runs: {succeeded} succeeded, {rolled_back} rolled back, {halted} halted, {refused} refused; {kills} processes killed or gave up and were resumed",
        reports.len()
    );
    println!(
        "operator: {applied} commands queued for a running driver and applied, {operator_rollbacks} runs rolled back by an operator; {reconciled} runs driven by {passes} `reconcile --once` passes"
    );
    for f in &failures {
        eprintln!("seed {}: {}", f.scenario.seed, f.violations[0]);
    }
    for f in failures.iter().take(3) {
        eprintln!("{}", render(f));
        eprintln!(
            "replay: TEAL_SIM_SEED={} cargo test --test sim -- --nocapture\n",
            f.scenario.seed
        );
    }
    let failing: Vec<u64> = failures.iter().map(|f| f.scenario.seed).collect();
    assert!(
        failing.is_empty(),
        "{} of {} seeds broke an invariant: {:?}",
        failing.len(),
        reports.len(),
        &failing[..failing.len().min(20)]
    );
    if !single {
        // The mix must exercise every outcome, or the suite proves little.
        assert!(succeeded > 0 && rolled_back > 0 && halted > 0 && refused > 0 && kills > 0);
        assert!(applied > 0 && operator_rollbacks > 0 && reconciled > 0 && passes > reconciled);
    }
}

#[test]
fn a_seed_replays_identically() {
    let a = run_seed(4242);
    let b = run_seed(4242);
    assert_eq!(a.events, b.events);
    assert_eq!(a.outcome, b.outcome);
}

/// Releases: seeded random releases run by the real runner on one shared
/// virtual time, each member held to the invariants above after every step
/// of its driver, the release to W (waves in order), P (the failure policy's
/// reach) and O (the outcome). `TEAL_SIM_RELEASE_RUNS=N` for more or fewer;
/// `teal sim --release --seed N` replays one.
#[test]
fn release_invariants_hold_across_seeded_faulty_releases() {
    use teal::release::schedule::ReleaseOutcome;
    use teal::sim::release::run_release_seed;
    let runs: u64 = std::env::var("TEAL_SIM_RELEASE_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let (mut succeeded, mut failed, mut sent_back, mut later_waves) = (0, 0, 0, 0);
    let mut failures = vec![];
    for seed in 0..runs {
        let r = run_release_seed(seed);
        match &r.outcome {
            Some(ReleaseOutcome::Succeeded) => succeeded += 1,
            Some(ReleaseOutcome::Failed { .. }) => failed += 1,
            _ => {}
        }
        sent_back += r
            .members
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    Some(Outcome::RolledBack {
                        reason: Reason::ReleaseFailed { .. }
                    })
                )
            })
            .count();
        later_waves += usize::from(
            r.scenario.parallel.len() > 1
                && r.members
                    .iter()
                    .zip(&r.scenario.members)
                    .any(|(o, m)| m.wave > 0 && o.is_some()),
        );
        if !r.violations.is_empty() {
            failures.push(r.render());
        }
    }
    println!(
        "{runs} releases: {succeeded} succeeded, {failed} failed, {sent_back} members sent back, \
         {later_waves} reached a later wave"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The mix is wide enough to mean something.
    assert!(succeeded > runs as usize / 10 && failed > runs as usize / 10);
    assert!(sent_back > 0 && later_waves > runs as usize / 10);
}

//! How often the canary judge is wrong, over seeded comparisons: equal
//! greens rolled back (false positives) and greens twice as bad in a
//! critical metric promoted (false negatives), at several numbers of data
//! points per side, and how many periods a 2× worse green takes to be
//! caught. Pure computation, no cloud: `cargo bench --bench analysis`
//! prints the table and writes docs/ANALYSIS-BENCHMARK.md.
//!
//! The model, stated so it can be argued with: one data point is one
//! 60-second period of a slot. A 5xx share is errors over requests, the
//! errors Poisson-distributed with the slot's rate (green at 10% of 100
//! requests/s: 600 requests a period; blue 5,400). A latency is a period's
//! mean response time, log-normal around 100 ms (σ = 0.25 of its log). Periods
//! are independent. "2× worse" doubles green's error rate, or its latency.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use teal::analysis::judge::{judge, MetricCheck, Outcome, Scoring};
use teal::analysis::mann_whitney::Alternative;

/// Comparisons per row.
const TRIALS: usize = 10_000;
/// Data points per side in the rows.
const POINTS: [usize; 5] = [3, 5, 10, 20, 30];
/// Confidences in the rows.
const CONFIDENCES: [f64; 2] = [0.98, 0.99];

/// Poisson(λ) by Knuth's product of uniforms (λ here is at most ~110).
fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u64 {
    let limit = (-lambda).exp();
    let (mut k, mut p) = (0u64, 1.0f64);
    loop {
        p *= rng.random::<f64>();
        if p <= limit {
            return k;
        }
        k += 1;
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` periods of a 5xx share with `requests` a period at `rate`.
fn shares(rng: &mut ChaCha8Rng, n: usize, requests: f64, rate: f64) -> Vec<f64> {
    (0..n)
        .map(|_| poisson(rng, requests * rate) as f64 / requests)
        .collect()
}

/// `n` periods of a mean latency around `median` seconds.
fn latencies(rng: &mut ChaCha8Rng, n: usize, median: f64) -> Vec<f64> {
    (0..n)
        .map(|_| median * (0.25 * normal(rng)).exp())
        .collect()
}

/// A critical metric with `confidence` and 10% allowed effect.
fn check(name: &str, min_points: usize, confidence: f64) -> MetricCheck {
    MetricCheck {
        name: name.into(),
        worse: Alternative::Greater,
        confidence,
        allowed_effect: 0.1,
        critical: true,
        must_have_data: false,
        min_points,
        group: name.into(),
    }
}

fn scoring() -> Scoring {
    Scoring {
        weights: BTreeMap::new(),
        pass: 95.0,
        marginal: 75.0,
    }
}

/// One comparison of `n` points a side: green `factor` times worse in the
/// metric `kind`; whether the judge let it through.
fn promoted(rng: &mut ChaCha8Rng, kind: &str, n: usize, factor: f64, confidence: f64) -> bool {
    let (green, blue) = match kind {
        "5xx share (1%)" => (
            shares(rng, n, 600.0, 0.01 * factor),
            shares(rng, n, 5400.0, 0.01),
        ),
        _ => (latencies(rng, n, 0.1 * factor), latencies(rng, n, 0.1)),
    };
    let j = judge(&[(check(kind, n, confidence), green, blue)], &scoring());
    j.outcome == Outcome::Pass
}

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_202);
    // (confidence index, points) → the worst false positive and negative rate over the metrics.
    let mut worst: BTreeMap<(usize, usize), (f64, f64)> = BTreeMap::new();
    let mut doc = String::from(
        "# Canary analysis: how often the judge is wrong\n\n\
         Written by `cargo bench --bench analysis` (`benches/analysis.rs`: the model is in its \
         module doc). Each row is 10,000 seeded comparisons of green with blue on one critical \
         metric (10% allowed effect, pass at 95, marginal at 75) at a confidence, with *n* data \
         points (60 s periods) on each side.\n\n\
         | metric | confidence | points a side | equal greens rolled back or held | 2× worse greens promoted |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for kind in ["5xx share (1%)", "mean latency (100 ms)"] {
        for (ci, confidence) in CONFIDENCES.into_iter().enumerate() {
            for n in POINTS {
                let fp = (0..TRIALS)
                    .filter(|_| !promoted(&mut rng, kind, n, 1.0, confidence))
                    .count();
                let fneg = (0..TRIALS)
                    .filter(|_| promoted(&mut rng, kind, n, 2.0, confidence))
                    .count();
                let pct = |k: usize| 100.0 * k as f64 / TRIALS as f64;
                let w = worst.entry((ci, n)).or_insert((0.0, 0.0));
                *w = (w.0.max(pct(fp)), w.1.max(pct(fneg)));
                let _ = writeln!(
                    doc,
                    "| {kind} | {confidence} | {n} | {:.2}% | {:.2}% |",
                    pct(fp),
                    pct(fneg)
                );
            }
        }
    }
    for (ci, confidence) in CONFIDENCES.into_iter().enumerate() {
        let first = POINTS
            .into_iter()
            .find(|n| worst[&(ci, *n)].0 <= 1.0 && worst[&(ci, *n)].1 <= 1.0);
        let _ = writeln!(
            doc,
            "\nAt confidence {confidence}: {}.",
            match first {
                Some(n) => format!(
                    "both rates at most 1% for every metric from {n} points a side (worst: {:.2}% \
                     and {:.2}%)",
                    worst[&(ci, n)].0,
                    worst[&(ci, n)].1
                ),
                None => "no row keeps both rates at most 1% for every metric".to_string(),
            }
        );
    }
    // Detection: the fewest periods (from 3, each side) after which a 2×
    // worse green is failed, over 1,000 bakes that add one period at a time.
    let _ = write!(
        doc,
        "\nPeriods until a 2× worse green is failed at 0.99, a bake adding one period at a time \
         from 3 (1,000 bakes each; \"never\" past 30):\n\n\
         | metric | median | p90 | max | never |\n|---|---:|---:|---:|---:|\n"
    );
    for kind in ["5xx share (1%)", "mean latency (100 ms)"] {
        let mut taken = Vec::new();
        let mut never = 0;
        for _ in 0..1_000 {
            let found = (3..=30).find(|&n| !promoted(&mut rng, kind, n, 2.0, 0.99));
            match found {
                Some(n) => taken.push(n),
                None => never += 1,
            }
        }
        taken.sort();
        let at = |q: f64| {
            taken
                .get(((taken.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .map_or("-".to_string(), |n| n.to_string())
        };
        let _ = writeln!(
            doc,
            "| {kind} | {} | {} | {} | {never} |",
            at(0.5),
            at(0.9),
            taken.last().map_or("-".to_string(), |n| n.to_string())
        );
    }
    let _ = write!(
        doc,
        "\nEach bake here is drawn afresh at each length, so this reads \"with n periods, the \
         judge fails it\"; a live bake that judges every period would stop at the first n that \
         fails.\n"
    );
    println!("{doc}");
    let out = std::env::var("BENCH_OUT").unwrap_or_else(|_| "docs/ANALYSIS-BENCHMARK.md".into());
    if out != "-" {
        std::fs::write(&out, &doc).expect("write the table");
        eprintln!("written to {out}");
    }
}

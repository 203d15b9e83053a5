//! From data points to what the engine acts on: each poll, green's latest
//! point against the absolute bounds (a breach is a failed gate, at once);
//! at the end of a bake, green against blue over the bake (a
//! [`StepJudgment`]). Pure, and the same for every provider: only where the
//! points come from differs.

use super::judge::{self, Judgment, Verdict};
use super::spec::AnalysisSpec;
use crate::model::{GateReading, GateState, Millis, Slot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One data point: the period starting at `at`, and its value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Start of the period.
    pub at: Millis,
    /// The statistic over the period.
    pub value: f64,
}

/// The data points of every metric for both slots, indexed by [`Slot::index`],
/// each oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricData {
    /// By metric name.
    pub series: BTreeMap<String, [Vec<Point>; 2]>,
}

impl MetricData {
    /// `metric`'s points in `slot` (none if it was not read).
    pub fn points(&self, metric: &str, slot: Slot) -> &[Point] {
        self.series
            .get(metric)
            .map_or(&[][..], |s| &s[slot.index()][..])
    }
}

/// The bake a judgment covers: periods that start at or after `from` and
/// end by `to`, of step `step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The step.
    pub step: usize,
    /// When the step's weights were read back.
    pub from: Millis,
    /// The end of its bake.
    pub to: Millis,
}

/// What a step's judgment decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOutcome {
    /// Take the next step.
    Pass,
    /// Hold the step for a person.
    Marginal,
    /// Roll back.
    Fail,
}

/// One metric's line in a judgment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricLine {
    /// The metric.
    pub name: String,
    /// `pass`, `fail` or `no_data`.
    pub verdict: String,
    /// Green's mean over the bake, and its data points.
    pub green: f64,
    /// Green's data points.
    pub green_points: usize,
    /// Blue's mean over the bake.
    pub blue: f64,
    /// Blue's data points.
    pub blue_points: usize,
    /// The test's p value, when there were points enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
    /// Its failure fails the step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
    /// All of it in words.
    pub text: String,
}

/// The judgment of one step's bake, as the engine records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepJudgment {
    /// The bake judged.
    pub window: Window,
    /// What it decided.
    pub outcome: StepOutcome,
    /// The score, 0 to 100, when some metric could be judged.
    pub score: Option<f64>,
    /// Each compared metric.
    pub metrics: Vec<MetricLine>,
}

impl StepJudgment {
    /// Why it failed or was marginal: the failing metrics in words, or the score.
    pub fn summary(&self) -> String {
        let failing: Vec<&str> = self
            .metrics
            .iter()
            .filter(|m| m.verdict != "pass")
            .map(|m| m.text.as_str())
            .collect();
        let score = self
            .score
            .map_or("no metric had data enough".to_string(), |s| {
                format!("score {s:.0}")
            });
        if failing.is_empty() {
            score
        } else {
            format!("{score}; {}", failing.join("; "))
        }
    }
}

/// The gate name of a metric's absolute bound.
pub fn bound_gate(metric: &str) -> String {
    format!("analysis:{metric}")
}

/// Green's latest point since `from` against every metric's bounds, as gate
/// readings (a metric without bounds reads nothing; without a point, `Ok`:
/// no data is judged at the end of the bake, by `must_have_data`).
pub fn bounds(
    spec: &AnalysisSpec,
    data: &MetricData,
    green: Slot,
    from: Millis,
) -> Vec<GateReading> {
    spec.metrics
        .iter()
        .filter(|m| m.max.is_some() || m.min.is_some())
        .map(|m| {
            let name = &m.check.name;
            let latest = data
                .points(name, green)
                .iter()
                .rev()
                .find(|p| p.at >= from && !p.value.is_nan());
            let breach = latest.and_then(|p| {
                let above = m
                    .max
                    .filter(|max| p.value > *max)
                    .map(|max| ("above max", max));
                let below = m
                    .min
                    .filter(|min| p.value < *min)
                    .map(|min| ("below min", min));
                above.or(below).map(|(what, bound)| (p, what, bound))
            });
            match breach {
                Some((p, what, bound)) => GateReading {
                    name: bound_gate(name),
                    state: GateState::Alarm,
                    reason: format!(
                        "green's {name} is {:.4}, {what} {bound} (period from {})",
                        p.value,
                        crate::model::fmt_time(p.at)
                    ),
                    since: p.at,
                },
                None => GateReading {
                    name: bound_gate(name),
                    state: GateState::Ok,
                    reason: latest.map_or("no data point yet".into(), |p| {
                        format!("green's {name} is {:.4}", p.value)
                    }),
                    since: from,
                },
            }
        })
        .collect()
}

/// The values of `metric`'s periods inside `window`, for `slot`.
fn in_window(
    data: &MetricData,
    metric: &str,
    slot: Slot,
    window: Window,
    period: Millis,
) -> Vec<f64> {
    data.points(metric, slot)
        .iter()
        .filter(|p| p.at >= window.from && p.at + period <= window.to && !p.value.is_nan())
        .map(|p| p.value)
        .collect()
}

/// Judge green against blue over `window`.
pub fn judge_step(
    spec: &AnalysisSpec,
    data: &MetricData,
    green: Slot,
    window: Window,
) -> StepJudgment {
    let compared: Vec<_> = spec.metrics.iter().filter(|m| m.compare).collect();
    let inputs: Vec<_> = compared
        .iter()
        .map(|m| {
            let name = &m.check.name;
            (
                m.check.clone(),
                in_window(data, name, green, window, spec.period_ms),
                in_window(data, name, green.other(), window, spec.period_ms),
            )
        })
        .collect();
    let Judgment {
        metrics,
        score,
        outcome,
    } = judge::judge(&inputs, &spec.scoring);
    let metrics = metrics
        .iter()
        .zip(&compared)
        .map(|(r, m)| MetricLine {
            name: r.name.clone(),
            verdict: match r.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "fail",
                Verdict::NoData if m.check.must_have_data => "fail",
                Verdict::NoData => "no_data",
            }
            .to_string(),
            green: r.green.0,
            green_points: r.green.1,
            blue: r.blue.0,
            blue_points: r.blue.1,
            p: r.test.map(|t| t.p),
            critical: m.check.critical,
            text: match r.verdict {
                Verdict::NoData if m.check.must_have_data => {
                    format!("{}, and it must have data: FAIL", r.describe(&m.check))
                }
                _ => r.describe(&m.check),
            },
        })
        .collect();
    StepJudgment {
        window,
        outcome: match outcome {
            judge::Outcome::Pass => StepOutcome::Pass,
            judge::Outcome::Marginal => StepOutcome::Marginal,
            judge::Outcome::Fail => StepOutcome::Fail,
        },
        score,
        metrics,
    }
}

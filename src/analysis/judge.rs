//! The judgment of one step's bake: each metric's green data points against
//! blue's, then a score over all metrics, the way Kayenta's judge scores a
//! canary. Pure: the caller brings the data points.
//!
//! A metric fails when the Mann-Whitney test finds green different from
//! blue in the metric's bad direction with the configured confidence *and*
//! the difference is larger than the allowed effect (green's mean over
//! blue's, so a statistically sure but tiny difference passes). Too few data
//! points is "no data": a failure if the metric must have data, else the
//! metric is left out of the score.
//!
//! The score is Σ over groups of the group's weight × the share of its
//! judged metrics that passed, over the weights of the groups judged, in
//! percent. A failed critical metric fails the judgment whatever the score.

use super::mann_whitney::{mann_whitney, Alternative, MannWhitney};
use std::collections::BTreeMap;

/// How one metric is judged.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricCheck {
    /// The metric's name, for reasons.
    pub name: String,
    /// Which way is worse: [`Alternative::Greater`] for errors and
    /// latency, [`Alternative::Less`] for a success share, or either.
    pub worse: Alternative,
    /// How sure the test must be that green differs (0.98: p < 0.02).
    pub confidence: f64,
    /// How much worse green's mean may be, as a share of blue's (0.1: up
    /// to 10% worse) before a sure difference fails the metric.
    pub allowed_effect: f64,
    /// Its failure fails the judgment.
    pub critical: bool,
    /// Too few data points fails it (else it is left out of the score).
    pub must_have_data: bool,
    /// The fewest data points each side needs to be judged.
    pub min_points: usize,
    /// Its group, for the score.
    pub group: String,
}

/// One metric's verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not worse, or not surely so, or not by more than allowed.
    Pass,
    /// Surely worse by more than allowed.
    Fail,
    /// Too few data points to judge.
    NoData,
}

/// What one metric's judgment found.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricResult {
    /// The metric's name.
    pub name: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// Green's mean and data points.
    pub green: (f64, usize),
    /// Blue's mean and data points.
    pub blue: (f64, usize),
    /// The test, when the metric had data enough.
    pub test: Option<MannWhitney>,
}

impl MetricResult {
    /// The result in words: `5xx: green 0.0599 vs blue 0.0200 over 12/12
    /// points, p=0.0000 (fails below 0.0200): FAIL` (the means, the data
    /// points each side, the test).
    pub fn describe(&self, check: &MetricCheck) -> String {
        let verdict = match self.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::NoData => "no data",
        };
        let test = self.test.map_or(String::new(), |t| {
            format!(", p={:.4} (fails below {:.4})", t.p, 1.0 - check.confidence)
        });
        format!(
            "{}: green {:.4} vs blue {:.4} over {}/{} points{test}: {verdict}",
            self.name, self.green.0, self.blue.0, self.green.1, self.blue.1
        )
    }
}

/// The judgment over every metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Score at least `pass`, no critical failure: take the next step.
    Pass,
    /// Score between `marginal` and `pass`: hold for a person.
    Marginal,
    /// Score below `marginal`, or a critical metric failed: roll back.
    Fail,
}

/// The judgment of one bake.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgment {
    /// Each metric's result, in the order of the checks.
    pub metrics: Vec<MetricResult>,
    /// The score, 0 to 100; `None` when no metric could be judged.
    pub score: Option<f64>,
    /// What the step does next.
    pub outcome: Outcome,
}

/// Group weights (a group not named weighs 1) and the two thresholds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scoring {
    /// Weight per group.
    pub weights: BTreeMap<String, f64>,
    /// The score at or above which the step passes.
    pub pass: f64,
    /// The score at or above which (and below `pass`) it is marginal.
    pub marginal: f64,
}

/// Judge one metric: green's data points against blue's.
pub fn judge_metric(check: &MetricCheck, green: &[f64], blue: &[f64]) -> MetricResult {
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let (gm, bm) = (mean(green), mean(blue));
    let result = |verdict, test| MetricResult {
        name: check.name.clone(),
        verdict,
        green: (gm, green.len()),
        blue: (bm, blue.len()),
        test,
    };
    let enough = green.len() >= check.min_points.max(1) && blue.len() >= check.min_points.max(1);
    let Some(test) = enough
        .then(|| mann_whitney(green, blue, check.worse))
        .flatten()
    else {
        return result(Verdict::NoData, None);
    };
    let sure = test.p < 1.0 - check.confidence;
    // How much worse green's mean is than blue's, as a share of blue's (a
    // zero blue makes any worse green infinitely so).
    let worse_by = |g: f64, b: f64| {
        if g <= b {
            0.0
        } else if b == 0.0 {
            f64::INFINITY
        } else {
            (g - b) / b.abs()
        }
    };
    let effect = match check.worse {
        Alternative::Greater => worse_by(gm, bm),
        Alternative::Less => worse_by(-gm, -bm),
        Alternative::TwoSided => worse_by(gm, bm).max(worse_by(-gm, -bm)),
    };
    let verdict = if sure && effect > check.allowed_effect {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    result(verdict, Some(test))
}

/// Judge every metric and score them.
pub fn judge(checks: &[(MetricCheck, Vec<f64>, Vec<f64>)], scoring: &Scoring) -> Judgment {
    let metrics: Vec<MetricResult> = checks
        .iter()
        .map(|(c, g, b)| judge_metric(c, g, b))
        .collect();
    let failed = |c: &MetricCheck, r: &MetricResult| {
        r.verdict == Verdict::Fail || (r.verdict == Verdict::NoData && c.must_have_data)
    };
    // Per group: (judged, passed).
    let mut groups: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut critical_failed = false;
    for ((check, _, _), r) in checks.iter().zip(&metrics) {
        let bad = failed(check, r);
        critical_failed |= bad && check.critical;
        if r.verdict == Verdict::NoData && !check.must_have_data {
            continue;
        }
        let g = groups.entry(check.group.as_str()).or_default();
        g.0 += 1;
        g.1 += usize::from(!bad);
    }
    let weight = |g: &str| scoring.weights.get(g).copied().unwrap_or(1.0);
    let total: f64 = groups.keys().map(|g| weight(g)).sum();
    let score = (total > 0.0).then(|| {
        100.0
            * groups
                .iter()
                .map(|(g, (judged, passed))| weight(g) * *passed as f64 / *judged as f64)
                .sum::<f64>()
            / total
    });
    let outcome = match score {
        _ if critical_failed => Outcome::Fail,
        // Nothing could be judged, and nothing had to be: no evidence against green.
        None => Outcome::Pass,
        Some(s) if s >= scoring.pass => Outcome::Pass,
        Some(s) if s >= scoring.marginal => Outcome::Marginal,
        Some(_) => Outcome::Fail,
    };
    Judgment {
        metrics,
        score,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, group: &str, critical: bool) -> MetricCheck {
        MetricCheck {
            name: name.into(),
            worse: Alternative::Greater,
            confidence: 0.98,
            allowed_effect: 0.1,
            critical,
            must_have_data: false,
            min_points: 5,
            group: group.into(),
        }
    }

    fn series(base: f64, n: usize) -> Vec<f64> {
        // A deterministic wobble around `base`.
        (0..n)
            .map(|i| base * (1.0 + 0.05 * ((i * 7 % 11) as f64 / 10.0 - 0.5)))
            .collect()
    }

    fn scoring() -> Scoring {
        Scoring {
            weights: BTreeMap::new(),
            pass: 95.0,
            marginal: 75.0,
        }
    }

    #[test]
    fn a_green_surely_worse_by_more_than_allowed_fails_its_metric() {
        let r = judge_metric(
            &check("5xx", "errors", true),
            &series(0.06, 12),
            &series(0.02, 12),
        );
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        assert!(r.test.unwrap().p < 0.02);
        let words = r.describe(&check("5xx", "errors", true));
        assert!(
            words.starts_with("5xx: green 0.0599 vs blue 0.0200 over 12/12 points, p=")
                && words.ends_with("(fails below 0.0200): FAIL"),
            "{words}"
        );
    }

    #[test]
    fn a_sure_but_small_difference_passes() {
        // 5% worse, every point: sure, but within the 10% allowed.
        let blue = series(1.0, 20);
        let green: Vec<f64> = blue.iter().map(|v| v * 1.05).collect();
        let r = judge_metric(&check("p99", "latency", false), &green, &blue);
        assert!(r.test.unwrap().p < 0.02);
        assert_eq!(r.verdict, Verdict::Pass);
    }

    #[test]
    fn better_is_never_a_failure_of_a_one_sided_metric() {
        let r = judge_metric(
            &check("5xx", "errors", true),
            &series(0.01, 12),
            &series(0.05, 12),
        );
        assert_eq!(r.verdict, Verdict::Pass);
    }

    #[test]
    fn too_few_points_is_no_data_which_fails_only_when_data_is_required() {
        let mut c = check("5xx", "errors", true);
        let few = (series(0.5, 3), series(0.01, 3));
        assert_eq!(judge_metric(&c, &few.0, &few.1).verdict, Verdict::NoData);
        let j = judge(&[(c.clone(), few.0.clone(), few.1.clone())], &scoring());
        assert_eq!((j.outcome, j.score), (Outcome::Pass, None));
        c.must_have_data = true;
        let j = judge(&[(c, few.0, few.1)], &scoring());
        assert_eq!((j.outcome, j.score), (Outcome::Fail, Some(0.0)));
    }

    #[test]
    fn the_score_weighs_groups_and_a_critical_failure_fails_whatever_the_score() {
        let bad = (series(0.3, 12), series(0.1, 12));
        let same = (series(0.1, 12), series(0.1, 12));
        let checks = |critical| {
            vec![
                (
                    check("5xx", "errors", critical),
                    bad.0.clone(),
                    bad.1.clone(),
                ),
                (
                    check("p99", "latency", false),
                    same.0.clone(),
                    same.1.clone(),
                ),
                (
                    check("cpu", "latency", false),
                    same.0.clone(),
                    same.1.clone(),
                ),
            ]
        };
        let mut s = scoring();
        s.weights.insert("errors".into(), 1.0);
        s.weights.insert("latency".into(), 3.0);
        // errors 0/1 × 1 + latency 2/2 × 3, over 4: 75%.
        let j = judge(&checks(false), &s);
        assert_eq!(j.score, Some(75.0));
        assert_eq!(j.outcome, Outcome::Marginal);
        let j = judge(&checks(true), &s);
        assert_eq!(j.outcome, Outcome::Fail);
        s.marginal = 80.0;
        assert_eq!(judge(&checks(false), &s).outcome, Outcome::Fail);
    }

    #[test]
    fn equal_greens_pass() {
        let j = judge(
            &[(
                check("5xx", "errors", true),
                series(0.02, 30),
                series(0.02, 30),
            )],
            &scoring(),
        );
        assert_eq!(j.outcome, Outcome::Pass);
        assert_eq!(j.score, Some(100.0));
    }
}

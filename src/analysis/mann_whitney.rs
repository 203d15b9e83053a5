//! The Mann-Whitney U test, as Kayenta's judge uses it to compare a canary
//! with its baseline: rank-based, so it needs no assumption about the shape
//! of a metric's distribution (latencies are skewed, error shares pile up at
//! zero), with the normal approximation corrected for ties and for
//! continuity. It is `scipy.stats.mannwhitneyu(green, blue, alternative,
//! method="asymptotic")`; `tests/data/mann_whitney.json` holds scipy's values
//! for 25 cases, ties included, and the tests hold this code to them.

use statrs::distribution::{ContinuousCDF, Normal};

/// Which way green must differ from blue for the test to say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Alternative {
    /// Green's values tend to be larger (a metric that fails by going up:
    /// errors, latency).
    Greater,
    /// Green's values tend to be smaller (throughput, a success share).
    Less,
    /// Either way.
    TwoSided,
}

/// What the test found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of green: the number of (green, blue) pairs in which green's value
    /// is the larger, ties counting one half.
    pub u: f64,
    /// The probability of a difference at least this large in the chosen
    /// direction were green and blue alike.
    pub p: f64,
    /// U divided by the number of pairs: the chance that a green value
    /// exceeds a blue one (0.5: alike). The test's effect size.
    pub effect: f64,
}

/// Compare `green` with `blue`; `None` when either is empty or holds a NaN
/// (there is nothing to judge).
pub fn mann_whitney(green: &[f64], blue: &[f64], alternative: Alternative) -> Option<MannWhitney> {
    if green.is_empty() || blue.is_empty() || green.iter().chain(blue).any(|v| v.is_nan()) {
        return None;
    }
    let (n1, n2) = (green.len() as f64, blue.len() as f64);
    let (ranks, tie_term) = ranks(green, blue);
    let r1: f64 = ranks[..green.len()].iter().sum();
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let u2 = n1 * n2 - u1;
    let (u, factor) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let n = n1 + n2;
    let mu = n1 * n2 / 2.0;
    let sigma = (n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
    // With every value tied, sigma is 0 and the numerator -0.5: z is -inf
    // and p is 1, as scipy has it.
    let z = (u - mu - 0.5) / sigma;
    let sf = if z.is_nan() {
        1.0
    } else {
        Normal::standard().sf(z)
    };
    Some(MannWhitney {
        u: u1,
        p: (sf * factor).clamp(0.0, 1.0),
        effect: u1 / (n1 * n2),
    })
}

/// Each value's rank among both samples (green's first, then blue's), ties
/// given their average rank; and Σ(t³ − t) over the groups of t tied values.
fn ranks(green: &[f64], blue: &[f64]) -> (Vec<f64>, f64) {
    let all: Vec<f64> = green.iter().chain(blue).copied().collect();
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| all[a].total_cmp(&all[b]));
    let mut ranks = vec![0.0; all.len()];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && all[order[j]] == all[order[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share ranks i+1..=j: their mean.
        let rank = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = rank;
        }
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    (ranks, tie_term)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Reference {
        cases: Vec<Case>,
    }

    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        green: Vec<f64>,
        blue: Vec<f64>,
        #[serde(rename = "two-sided")]
        two_sided: Expected,
        greater: Expected,
        less: Expected,
    }

    #[derive(serde::Deserialize)]
    struct Expected {
        u: f64,
        p: f64,
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1e-300) || (a - b).abs() < 1e-12
    }

    #[test]
    fn agrees_with_scipy_on_every_reference_case() {
        let text = include_str!("../../tests/data/mann_whitney.json");
        let reference: Reference = serde_json::from_str(text).expect("the reference file");
        assert!(reference.cases.len() >= 20, "at least 20 cases");
        let mut with_ties = 0;
        for c in &reference.cases {
            let (_, tie_term) = ranks(&c.green, &c.blue);
            with_ties += usize::from(tie_term > 0.0);
            for (alternative, want) in [
                (Alternative::TwoSided, &c.two_sided),
                (Alternative::Greater, &c.greater),
                (Alternative::Less, &c.less),
            ] {
                let got = mann_whitney(&c.green, &c.blue, alternative).expect("samples");
                for (what, got, want) in [("U", got.u, want.u), ("p", got.p, want.p)] {
                    assert!(
                        close(got, want),
                        "{} {alternative:?}: {what} {got} vs scipy {want}",
                        c.name
                    );
                }
            }
        }
        assert!(with_ties >= 5, "ties in {with_ties} cases only");
    }

    #[test]
    fn tied_ranks_are_averaged_and_counted() {
        // 1, 2, 2, 2, 3: the three 2s share ranks 2, 3, 4.
        let (r, tie_term) = ranks(&[2.0, 1.0], &[2.0, 3.0, 2.0]);
        assert_eq!(r, vec![3.0, 1.0, 3.0, 5.0, 3.0]);
        assert_eq!(tie_term, 27.0 - 3.0);
    }

    #[test]
    fn nothing_to_judge_without_values() {
        assert_eq!(mann_whitney(&[], &[1.0], Alternative::Greater), None);
        assert_eq!(
            mann_whitney(&[1.0], &[f64::NAN], Alternative::Greater),
            None
        );
    }

    #[test]
    fn a_green_above_blue_is_found_in_the_direction_asked_only() {
        let blue: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.1).collect();
        let green: Vec<f64> = blue.iter().map(|v| v + 1.5).collect();
        let up = mann_whitney(&green, &blue, Alternative::Greater).unwrap();
        let down = mann_whitney(&green, &blue, Alternative::Less).unwrap();
        assert!(up.p < 0.001, "{up:?}");
        assert!(down.p > 0.99, "{down:?}");
        assert!(up.effect > 0.8);
    }
}

//! Live metric gates: what the local proxy saw per slot over a sliding
//! window, judged like a CloudWatch alarm (OK / ALARM / INSUFFICIENT_DATA) so
//! that the engine treats both alike.

use crate::config::LocalGates;
use crate::model::{GateReading, GateState, Millis};
use std::collections::VecDeque;

/// One request as the proxy saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When it finished (ms since the epoch).
    pub at: Millis,
    /// A 5xx answer, or no answer at all (connection refused or reset).
    pub failed: bool,
    /// Time to the answer's head, in microseconds.
    pub latency_us: u64,
}

/// The samples of one slot within the window, plus running totals.
///
/// Every push forgets what fell out of the window, so memory stays bounded by
/// the request rate times the window even when no one reads the gates (the
/// daemon serves for days between deployments).
#[derive(Debug, Default)]
pub struct Window {
    length_ms: Millis,
    samples: VecDeque<Sample>,
    /// Requests ever seen.
    pub total: u64,
    /// Failed requests ever seen.
    pub failed_total: u64,
}

impl Window {
    /// An empty window that keeps `length_ms` of samples (0: totals only).
    pub fn new(length_ms: Millis) -> Window {
        Window {
            length_ms,
            ..Window::default()
        }
    }

    /// Add a sample and forget those that left the window before it.
    pub fn push(&mut self, s: Sample) {
        self.total += 1;
        self.failed_total += u64::from(s.failed);
        if self.length_ms == 0 {
            return;
        }
        self.samples.push_back(s);
        self.prune(s.at, self.length_ms);
    }

    /// Forget every sample (the totals stay): a new fleet in the slot must
    /// not be judged by what its predecessor did.
    pub fn restart(&mut self) {
        self.samples.clear();
    }

    /// Samples held now.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// No samples held.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Forget samples older than `window_ms` before `now`.
    pub fn prune(&mut self, now: Millis, window_ms: Millis) {
        let from = now.saturating_sub(window_ms);
        while self.samples.front().is_some_and(|s| s.at < from) {
            self.samples.pop_front();
        }
    }

    /// (requests, failed, p99 latency in µs) within the window.
    pub fn summary(&self) -> (u32, u32, u64) {
        let n = self.samples.len() as u32;
        let failed = self.samples.iter().filter(|s| s.failed).count() as u32;
        let mut lat: Vec<u64> = self.samples.iter().map(|s| s.latency_us).collect();
        lat.sort_unstable();
        let p99 = if lat.is_empty() {
            0
        } else {
            lat[((lat.len() * 99).div_ceil(100)).saturating_sub(1)]
        };
        (n, failed, p99)
    }
}

/// The states of the two gates for one window, with CloudWatch-style reasons.
pub fn judge(w: &Window, g: &LocalGates) -> [(GateState, String); 2] {
    let (n, failed, p99_us) = w.summary();
    let window = crate::model::fmt_ms(g.window_ms);
    if n < g.min_requests {
        let why = format!(
            "{n} requests in the last {window}, fewer than the {} needed to judge",
            g.min_requests
        );
        return [
            (GateState::InsufficientData, why.clone()),
            (GateState::InsufficientData, why),
        ];
    }
    let share = f64::from(failed) * 100.0 / f64::from(n);
    let errors = if share > g.max_5xx_percent {
        GateState::Alarm
    } else {
        GateState::Ok
    };
    let p99_ms = p99_us as f64 / 1000.0;
    let latency = if p99_ms > g.max_p99_ms as f64 {
        GateState::Alarm
    } else {
        GateState::Ok
    };
    [
        (
            errors,
            format!(
                "5xx share {share:.1}% ({failed} of {n} requests in the last {window}); threshold {}%",
                g.max_5xx_percent
            ),
        ),
        (
            latency,
            format!(
                "p99 {p99_ms:.1}ms over {n} requests in the last {window}; threshold {}ms",
                g.max_p99_ms
            ),
        ),
    ]
}

/// Gate readings that remember since when each gate has been in its state.
#[derive(Debug, Default)]
pub struct Gates {
    since: [(Option<GateState>, Millis); 2],
}

impl Gates {
    /// Readings for the window at `now`.
    pub fn read(&mut self, w: &Window, g: &LocalGates, now: Millis) -> Vec<GateReading> {
        let judged = judge(w, g);
        judged
            .into_iter()
            .enumerate()
            .map(|(i, (state, reason))| {
                if self.since[i].0 != Some(state) {
                    self.since[i] = (Some(state), now);
                }
                GateReading {
                    name: LocalGates::NAMES[i].to_string(),
                    state,
                    reason,
                    since: self.since[i].1,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATES: LocalGates = LocalGates {
        max_5xx_percent: 5.0,
        max_p99_ms: 100,
        min_requests: 10,
        window_ms: 1_000,
    };

    fn window(samples: &[(Millis, bool, u64)]) -> Window {
        let mut w = Window::new(GATES.window_ms);
        for &(at, failed, latency_us) in samples {
            w.push(Sample {
                at,
                failed,
                latency_us,
            });
        }
        w
    }

    #[test]
    fn too_few_requests_is_insufficient_data() {
        let w = window(&[(0, true, 10); 9]);
        let [(e, why), (l, _)] = judge(&w, &GATES);
        assert_eq!(
            (e, l),
            (GateState::InsufficientData, GateState::InsufficientData)
        );
        assert!(why.contains("9 requests"), "{why}");
    }

    #[test]
    fn error_share_over_the_threshold_alarms() {
        let mut s = vec![(0, false, 1_000); 94];
        s.extend([(0, true, 1_000); 6]);
        let [(e, why), (l, _)] = judge(&window(&s), &GATES);
        assert_eq!(e, GateState::Alarm, "{why}");
        assert_eq!(l, GateState::Ok);
        assert!(why.starts_with("5xx share 6.0% (6 of 100"), "{why}");
        let mut s = vec![(0, false, 1_000); 95];
        s.extend([(0, true, 1_000); 5]);
        assert_eq!(
            judge(&window(&s), &GATES)[0].0,
            GateState::Ok,
            "5% is not over 5%"
        );
    }

    #[test]
    fn p99_is_the_99th_percentile() {
        // 98 fast, 2 slow: the p99 of 100 is the 99th smallest, a slow one.
        let mut s = vec![(0, false, 1_000); 98];
        s.extend([(0, false, 500_000); 2]);
        assert_eq!(window(&s).summary().2, 500_000);
        assert_eq!(judge(&window(&s), &GATES)[1].0, GateState::Alarm);
        // 99 fast, 1 slow: p99 is fast.
        let mut s = vec![(0, false, 1_000); 99];
        s.push((0, false, 500_000));
        assert_eq!(window(&s).summary().2, 1_000);
    }

    #[test]
    fn old_samples_leave_the_window_and_since_tracks_changes() {
        let mut w = window(&[(0, true, 10); 20]);
        let mut gates = Gates::default();
        let r = gates.read(&w, &GATES, 500);
        assert_eq!((r[0].state, r[0].since), (GateState::Alarm, 500));
        assert_eq!(
            gates.read(&w, &GATES, 900)[0].since,
            500,
            "same state: same since"
        );
        w.prune(2_000, GATES.window_ms);
        let r = gates.read(&w, &GATES, 2_000);
        assert_eq!(
            (r[0].state, r[0].since),
            (GateState::InsufficientData, 2_000)
        );
        assert_eq!((w.total, w.failed_total), (20, 20), "totals stay");
    }

    #[test]
    fn pushing_alone_keeps_the_window_bounded() {
        // No gate read prunes here: a million requests over 100 s with a 1 s
        // window must hold about one second's worth.
        let mut w = Window::new(1_000);
        for i in 0..1_000_000u64 {
            w.push(Sample {
                at: i / 10_000 * 1_000,
                failed: false,
                latency_us: 1,
            });
        }
        assert_eq!(w.total, 1_000_000);
        assert!(w.len() <= 20_000, "{} samples held", w.len());
        let mut totals_only = Window::new(0);
        totals_only.push(Sample {
            at: 5,
            failed: true,
            latency_us: 1,
        });
        assert_eq!(
            (
                totals_only.total,
                totals_only.failed_total,
                totals_only.len()
            ),
            (1, 1, 0)
        );
    }
}

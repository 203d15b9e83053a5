//! What the proxy saw per slot, second by second, for canary analysis: each
//! second's requests, failures and latencies, kept for a bounded time, and
//! summed into periods on request (the local provider's `GetMetricData`).
//!
//! Memory is bounded twice: seconds older than [`KEPT_MS`] are dropped, and
//! a second keeps at most [`LATENCIES_PER_SECOND`] latencies (the first
//! ones: a percentile over a busier second is over its first part).

use super::api::PeriodSample;
use crate::model::Millis;
use std::collections::VecDeque;

/// How long seconds are kept: longer than any sensible bake.
pub const KEPT_MS: Millis = 30 * 60 * 1000;
/// Latencies kept per second.
pub const LATENCIES_PER_SECOND: usize = 4096;

#[derive(Debug, Default, Clone)]
struct Second {
    at: Millis,
    requests: u64,
    failed: u64,
    latencies_us: Vec<u32>,
}

/// One slot's seconds, oldest first.
#[derive(Debug, Default)]
pub struct Seconds {
    seconds: VecDeque<Second>,
}

impl Seconds {
    /// Count one request that ended at `at`.
    pub fn push(&mut self, at: Millis, failed: bool, latency_us: u64) {
        let second = at / 1000 * 1000;
        if self.seconds.back().is_none_or(|s| s.at < second) {
            self.seconds.push_back(Second {
                at: second,
                ..Second::default()
            });
        }
        let s = self.seconds.back_mut().expect("just pushed");
        s.requests += 1;
        s.failed += u64::from(failed);
        if s.latencies_us.len() < LATENCIES_PER_SECOND {
            s.latencies_us
                .push(latency_us.min(u64::from(u32::MAX)) as u32);
        }
        while self
            .seconds
            .front()
            .is_some_and(|f| f.at + KEPT_MS < second)
        {
            self.seconds.pop_front();
        }
    }

    /// Forget everything: a new fleet in the slot is not its predecessor.
    pub fn restart(&mut self) {
        self.seconds.clear();
    }

    /// Periods of `period_ms` from `from`, complete by `now`, that saw
    /// requests: counts, and the latency at each of `percentiles`, in ms.
    pub fn periods(
        &self,
        from: Millis,
        now: Millis,
        period_ms: Millis,
        percentiles: &[f64],
    ) -> Vec<PeriodSample> {
        let period = period_ms.max(1000) / 1000 * 1000;
        let mut out: Vec<PeriodSample> = Vec::new();
        let mut latencies: Vec<u32> = Vec::new();
        let mut current: Option<PeriodSample> = None;
        let finish = |p: Option<PeriodSample>, lat: &mut Vec<u32>, out: &mut Vec<PeriodSample>| {
            if let Some(mut p) = p {
                lat.sort_unstable();
                p.latency_ms = percentiles.iter().map(|q| percentile_ms(lat, *q)).collect();
                out.push(p);
            }
            lat.clear();
        };
        for s in self.seconds.iter().filter(|s| s.at >= from) {
            let at = s.at / period * period;
            if at < from || at + period > now {
                continue;
            }
            if current.as_ref().is_none_or(|c| c.at != at) {
                finish(current.take(), &mut latencies, &mut out);
                current = Some(PeriodSample {
                    at,
                    requests: 0,
                    failed: 0,
                    latency_ms: vec![],
                });
            }
            let c = current.as_mut().expect("set above");
            c.requests += s.requests;
            c.failed += s.failed;
            latencies.extend(&s.latencies_us);
        }
        finish(current, &mut latencies, &mut out);
        out
    }
}

/// The `q`th percentile (nearest rank) of sorted latencies in µs, in ms.
fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((q / 100.0) * sorted_us.len() as f64).ceil() as usize;
    f64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_sum_into_complete_periods_with_percentiles() {
        let mut s = Seconds::default();
        // 10 s of 100 requests each: 1 failure a second, latencies 1..=100 ms.
        for sec in 0..10u64 {
            for i in 1..=100u64 {
                s.push(10_000 + sec * 1000 + i, i == 1, i * 1000);
            }
        }
        let p = s.periods(10_000, 20_000, 5_000, &[99.0, 50.0]);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].at, p[0].requests, p[0].failed), (10_000, 500, 5));
        assert_eq!(p[0].latency_ms, vec![99.0, 50.0]);
        // The period still running is not a data point yet.
        assert_eq!(s.periods(10_000, 19_999, 5_000, &[99.0]).len(), 1);
        // Periods starting before `from` are left out.
        assert_eq!(s.periods(12_000, 20_000, 5_000, &[99.0]).len(), 1);
    }

    #[test]
    fn old_seconds_and_excess_latencies_are_dropped() {
        let mut s = Seconds::default();
        for i in 0..(LATENCIES_PER_SECOND as u64 + 10) {
            s.push(0, false, i);
        }
        assert_eq!(s.seconds[0].latencies_us.len(), LATENCIES_PER_SECOND);
        assert_eq!(s.seconds[0].requests, LATENCIES_PER_SECOND as u64 + 10);
        s.push(KEPT_MS + 2000, false, 1);
        assert_eq!(s.seconds.len(), 1, "the old second is gone");
    }
}

//! Canary analysis's data points in the simulated cloud: for every metric
//! and slot, one point per period in which the slot carried traffic, with
//! seeded noise around a base, green's scaled by the scenario's factor
//! (1: equal to blue), each published a seeded lag after its period ends.
//!
//! A point is a pure function of the seed, the metric, the slot, the period
//! and the weights history, so the checker can compute exactly the points
//! the driver read. Lags never exceed the analysis's `late`: once a bake's
//! judgment is due, every point of it is published (a real source can be
//! later still; the judgment then counts fewer points, which the judge's
//! tests cover).

use super::World;
use crate::analysis::{AnalysisSpec, MetricData, Point};
use crate::model::{Millis, Slot};

/// The series of one scenario.
#[derive(Debug, Clone)]
pub struct SimMetrics {
    /// What is measured and judged.
    pub spec: AnalysisSpec,
    /// The noise's seed.
    pub seed: u64,
    /// Each metric's mean for blue.
    pub base: f64,
    /// Noise, as a share of the value (uniform, ± this).
    pub noise: f64,
    /// Green's values are blue's times this.
    pub green_factor: f64,
    /// Longest publication lag after a period ends (≤ `spec.late_ms`).
    pub lag_max: Millis,
    /// Blue's revision: a slot running another is green.
    pub blue_revision: String,
}

/// SplitMix64: a good 64-bit mix, so each point's noise is independent.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1) from `key`.
fn unit(key: u64) -> f64 {
    (mix(key) >> 11) as f64 / (1u64 << 53) as f64
}

impl SimMetrics {
    fn key(&self, metric: usize, slot: Slot, period: Millis, what: u64) -> u64 {
        mix(self.seed
            ^ mix(metric as u64 ^ (what << 32))
            ^ mix(period ^ (slot.index() as u64) << 62))
    }

    /// The value of `metric` in `slot` over the period starting at `at`.
    pub fn value(&self, metric: usize, slot: Slot, at: Millis, green: bool) -> f64 {
        let wobble = 1.0 + self.noise * (2.0 * unit(self.key(metric, slot, at, 1)) - 1.0);
        let factor = if green { self.green_factor } else { 1.0 };
        self.base * wobble * factor
    }

    /// When the point of that period is published.
    pub fn published(&self, metric: usize, slot: Slot, at: Millis) -> Millis {
        let lag = (unit(self.key(metric, slot, at, 2)) * (self.lag_max + 1) as f64) as Millis;
        at + self.spec.period_ms + lag.min(self.lag_max)
    }

    /// Every metric's points for both slots, periods from `from`, as
    /// published by `now` in world `w`.
    pub fn read(&self, w: &World, from: Millis, now: Millis) -> MetricData {
        let period = self.spec.period_ms.max(1);
        let mut data = MetricData::default();
        for (i, m) in self.spec.metrics.iter().enumerate() {
            let mut series = [Vec::new(), Vec::new()];
            for slot in Slot::BOTH {
                let green = w.fleets[slot.index()]
                    .as_ref()
                    .is_some_and(|f| f.revision != self.blue_revision);
                let mut at = from.div_ceil(period) * period;
                while at + period <= now {
                    if weight_at(w, slot, at) > 0 && self.published(i, slot, at) <= now {
                        series[slot.index()].push(Point {
                            at,
                            value: self.value(i, slot, at, green),
                        });
                    }
                    at += period;
                }
            }
            data.series.insert(m.check.name.clone(), series);
        }
        data
    }
}

/// `slot`'s weight at time `t`, from the weights history.
pub fn weight_at(w: &World, slot: Slot, t: Millis) -> u8 {
    let changes = &w.trace.weight_changes;
    match changes.iter().rposition(|c| c.at <= t) {
        Some(i) => changes[i].to.get(slot),
        None => changes.first().map_or(w.router, |c| c.from).get(slot),
    }
}

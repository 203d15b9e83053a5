//! Canary analysis's data points on the local provider: the daemon's
//! per-slot periods ([`super::seconds`]) as the presets' metrics, the way
//! CloudWatch has them for an ALB target group: `alb-5xx-share` is the
//! failed share of requests, `alb-latency` the latency at the preset's
//! percentile, in seconds (as `TargetResponseTime`).

use super::api::{PeriodSample, SamplesRequest};
use super::client::Admin;
use crate::analysis::spec::{percentile, Preset, Source};
use crate::analysis::{AnalysisSpec, MetricData, Point};
use crate::ports::{Metrics, MetricsQuery, PortError};
use async_trait::async_trait;
use hyper::Method;

/// The analysis's data points, from the daemon.
pub struct LocalMetrics {
    admin: Admin,
    spec: AnalysisSpec,
    /// Each metric's latency percentile (its index in the request), if a latency.
    percentiles: Vec<Option<usize>>,
    asked: Vec<f64>,
}

impl LocalMetrics {
    /// Read `spec`'s metrics (presets only: config refuses others here).
    pub fn new(admin: Admin, spec: AnalysisSpec) -> LocalMetrics {
        let mut asked: Vec<f64> = Vec::new();
        let percentiles = spec
            .metrics
            .iter()
            .map(|m| match (&m.preset, &m.source) {
                (Some(Preset::AlbLatency), Source::Stat(q)) => {
                    let p = percentile(&q.stat).unwrap_or(99.0);
                    let i = asked.iter().position(|x| *x == p).unwrap_or_else(|| {
                        asked.push(p);
                        asked.len() - 1
                    });
                    Some(i)
                }
                _ => None,
            })
            .collect();
        LocalMetrics {
            admin,
            spec,
            percentiles,
            asked,
        }
    }
}

#[async_trait]
impl Metrics for LocalMetrics {
    fn spec(&self) -> &AnalysisSpec {
        &self.spec
    }

    async fn read(&self, q: MetricsQuery<'_>) -> Result<MetricData, PortError> {
        let req = SamplesRequest {
            from: q.from,
            period_ms: self.spec.period_ms,
            percentiles: self.asked.clone(),
        };
        let body = serde_json::to_vec(&req).expect("serialisable");
        let slots: [Vec<PeriodSample>; 2] = self
            .admin
            .call("metrics.read", Method::POST, "/v1/samples", Some(body))
            .await?;
        let mut data = MetricData::default();
        for (m, latency) in self.spec.metrics.iter().zip(&self.percentiles) {
            let series = |periods: &[PeriodSample]| -> Vec<Point> {
                periods
                    .iter()
                    .filter(|p| p.requests > 0)
                    .map(|p| Point {
                        at: p.at,
                        value: match latency {
                            Some(i) => p.latency_ms.get(*i).copied().unwrap_or(f64::NAN) / 1000.0,
                            None => p.failed as f64 / p.requests as f64,
                        },
                    })
                    .collect()
            };
            data.series
                .insert(m.check.name.clone(), [series(&slots[0]), series(&slots[1])]);
        }
        Ok(data)
    }
}

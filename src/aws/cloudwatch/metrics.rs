//! Canary analysis's data points from CloudWatch: every metric of the
//! deployment, for both slots, in one `GetMetricData` call per poll (up to
//! 500 queries; config refuses more), asking only for periods not yet read
//! as final.
//!
//! CloudWatch publishes a period's data point late (ALB metrics: a period of
//! 60 s, typically a minute or two late), and a point read too early can
//! still change. So a period counts as final once `late` has passed since
//! it ended; until then it is read again. Each poll asks from the first
//! period that is not final, and keeps the final ones.
//!
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html>

use crate::analysis::spec::{fill, LiveValues, Query, SlotValues, Source};
use crate::analysis::{AnalysisSpec, MetricData, Point};
use crate::aws::{ApiCalls, Aws};
use crate::aws_call;
use crate::model::{Millis, Slot};
use crate::ports::{BlueNow, Checks, ErrorKind, Metrics, MetricsQuery, PortError};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricDataResult, MetricStat, ScanBy, StatusCode,
};
use aws_sdk_cloudwatch::Client;
use aws_smithy_types::DateTime;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The analysis's data points, from CloudWatch.
pub struct CloudWatchMetrics {
    client: Client,
    calls: Arc<ApiCalls>,
    spec: AnalysisSpec,
    /// Each slot's placeholder values (all but `{revision}`, which a read brings).
    slots: [SlotValues; 2],
    /// Values the router learns as it reads (`{distribution}`), if any.
    live: Option<LiveValues>,
    kept: Mutex<Kept>,
}

/// What was read, by `(metric, slot index)`: each period's value, and the
/// first period not yet final.
#[derive(Debug, Default)]
struct Kept {
    points: BTreeMap<(String, usize), BTreeMap<Millis, f64>>,
    /// The earliest period asked for; a read from before it starts over.
    from: Option<Millis>,
    /// Both slots' placeholder values the points were read with; other
    /// values (a fleet's name first seen, say) start over, or points read
    /// with the wrong dimensions would be kept as final.
    values: Option<[SlotValues; 2]>,
    /// Periods starting before this are final and never asked again.
    settled: Millis,
}

impl CloudWatchMetrics {
    /// Read `spec`'s metrics with each slot's placeholder values.
    pub fn new(aws: &Aws, spec: AnalysisSpec, slots: [SlotValues; 2]) -> CloudWatchMetrics {
        CloudWatchMetrics {
            client: Client::new(&aws.sdk),
            calls: aws.calls.clone(),
            spec,
            slots,
            live: None,
            kept: Mutex::new(Kept::default()),
        }
    }

    /// Also fill the placeholders `live` holds, as the router last read them.
    pub fn with_live(mut self, live: LiveValues) -> CloudWatchMetrics {
        self.live = Some(live);
        self
    }

    /// Slot `slot`'s placeholder values, with what a read knows better:
    /// the revision, and the fleet's observed name.
    fn values(&self, slot: usize, revision: Option<&str>, name: Option<&str>) -> SlotValues {
        let mut v = self.slots[slot].clone();
        if let Some(live) = &self.live {
            v.extend(live.lock().expect("not poisoned")[slot].clone());
        }
        if let Some(r) = revision {
            v.insert("revision", r.to_string());
        }
        if let Some(n) = name {
            for key in ["service", "group"] {
                if let Some(value) = v.get_mut(key) {
                    *value = n.to_string();
                }
            }
        }
        v
    }

    /// The queries of both slots (`slots` picks which), ids `m{metric}_{slot}`
    /// for what is returned and `m{metric}_{slot}_{query}` for an expression's parts.
    fn queries(
        &self,
        slots: &[usize],
        revisions: [Option<&str>; 2],
        names: [Option<&str>; 2],
    ) -> Result<Vec<MetricDataQuery>, PortError> {
        let period = (self.spec.period_ms / 1000) as i32;
        let mut out = Vec::new();
        for (i, m) in self.spec.metrics.iter().enumerate() {
            for &s in slots {
                let values = self.values(s, revisions[s], names[s]);
                let id = format!("m{i}_{s}");
                let stat =
                    |q: &Query, id: String, returned: bool| -> Result<MetricDataQuery, PortError> {
                        let dims = q.fill(&values).map_err(|e| {
                            PortError::new(
                                "GetMetricData",
                                ErrorKind::Invalid,
                                format!("{}: {e}", m.check.name),
                            )
                        })?;
                        let metric = Metric::builder()
                            .namespace(&q.namespace)
                            .metric_name(&q.metric)
                            .set_dimensions(Some(
                                dims.into_iter()
                                    .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                                    .collect(),
                            ))
                            .build();
                        Ok(MetricDataQuery::builder()
                            .id(id)
                            .metric_stat(
                                MetricStat::builder()
                                    .metric(metric)
                                    .period(period)
                                    .stat(&q.stat)
                                    .build(),
                            )
                            .return_data(returned)
                            .build())
                    };
                match &m.source {
                    Source::Stat(q) => out.push(stat(q, id, true)?),
                    Source::Expression {
                        expression,
                        queries,
                    } => {
                        for (qid, q) in queries {
                            out.push(stat(q, format!("{id}_{qid}"), false)?);
                        }
                        out.push(
                            MetricDataQuery::builder()
                                .id(&id)
                                .expression(rename_ids(expression, |w| {
                                    queries.contains_key(w).then(|| format!("{id}_{w}"))
                                }))
                                .period(period)
                                .return_data(true)
                                .build(),
                        );
                    }
                }
            }
        }
        Ok(out)
    }

    /// One `GetMetricData` (its pages, if CloudWatch splits the answer) from
    /// `start` to `end`, as points by `(metric, slot)`.
    async fn get(
        &self,
        queries: Vec<MetricDataQuery>,
        start: Millis,
        end: Millis,
    ) -> Result<BTreeMap<(String, usize), Vec<Point>>, PortError> {
        let mut got: BTreeMap<(String, usize), Vec<Point>> = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            // Read with the gates: never put off by the rate limit.
            let out = crate::ports::urgent(async {
                aws_call!(
                    self.calls,
                    "GetMetricData",
                    self.client
                        .get_metric_data()
                        .set_metric_data_queries(Some(queries.clone()))
                        .start_time(DateTime::from_millis(start as i64))
                        .end_time(DateTime::from_millis(end as i64))
                        .scan_by(ScanBy::TimestampAscending)
                        .set_next_token(token.clone())
                        .send()
                )
            })
            .await?;
            for r in out.metric_data_results() {
                self.take(r, &mut got)?;
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        for points in got.values_mut() {
            points.sort_by_key(|p| p.at);
        }
        Ok(got)
    }

    fn take(
        &self,
        r: &MetricDataResult,
        got: &mut BTreeMap<(String, usize), Vec<Point>>,
    ) -> Result<(), PortError> {
        let Some((metric, slot)) = r.id().and_then(|id| self.parse_id(id)) else {
            return Ok(());
        };
        if matches!(
            r.status_code(),
            Some(StatusCode::Forbidden | StatusCode::InternalError)
        ) {
            let why: Vec<&str> = r.messages().iter().filter_map(|m| m.value()).collect();
            let kind = match r.status_code() {
                Some(StatusCode::Forbidden) => ErrorKind::Denied,
                _ => ErrorKind::Transient,
            };
            return Err(PortError::new(
                "GetMetricData",
                kind,
                format!("{metric} (slot {}): {}", slot_of(slot), why.join("; ")),
            ));
        }
        let points = got.entry((metric, slot)).or_default();
        for (t, v) in r.timestamps().iter().zip(r.values()) {
            if let Ok(at) = t.to_millis() {
                points.push(Point {
                    at: at.max(0) as Millis,
                    value: *v,
                });
            }
        }
        Ok(())
    }

    /// `m{i}_{slot}` back to the metric's name and the slot.
    fn parse_id(&self, id: &str) -> Option<(String, usize)> {
        let (i, s) = id.strip_prefix('m')?.split_once('_')?;
        let m = self.spec.metrics.get(i.parse::<usize>().ok()?)?;
        let s: usize = s.parse().ok()?;
        (s < 2).then(|| (m.check.name.clone(), s))
    }
}

fn slot_of(index: usize) -> Slot {
    if index == 0 {
        Slot::A
    } else {
        Slot::B
    }
}

/// `expression` with each lowercase identifier that `rename` knows replaced
/// (CloudWatch's functions are upper case and left alone).
fn rename_ids(expression: &str, rename: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let renamed = word
            .starts_with(|c: char| c.is_ascii_lowercase())
            .then(|| rename(word))
            .flatten();
        out.push_str(renamed.as_deref().unwrap_or(word));
        word.clear();
    };
    for c in expression.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[async_trait]
impl Metrics for CloudWatchMetrics {
    fn spec(&self) -> &AnalysisSpec {
        &self.spec
    }

    async fn read(&self, q: MetricsQuery<'_>) -> Result<MetricData, PortError> {
        let period = self.spec.period_ms.max(1);
        let floor = |t: Millis| t / period * period;
        // Complete periods only: one still running is not a data point yet.
        let end = floor(q.now);
        let values = [0, 1].map(|s| self.values(s, q.revisions[s], q.names[s]));
        let start = {
            let mut kept = self.kept.lock().expect("metrics cache");
            if kept.from.is_none_or(|f| floor(q.from) < f) || kept.values.as_ref() != Some(&values)
            {
                *kept = Kept {
                    from: Some(floor(q.from)),
                    values: Some(values),
                    ..Kept::default()
                };
            }
            kept.settled.max(floor(q.from))
        };
        if end > start {
            let queries = self.queries(&[0, 1], q.revisions, q.names)?;
            let got = self.get(queries, start, end).await?;
            let mut kept = self.kept.lock().expect("metrics cache");
            for m in &self.spec.metrics {
                for s in 0..2 {
                    let series = kept.points.entry((m.check.name.clone(), s)).or_default();
                    // What this read covered replaces what was kept of it.
                    series.retain(|at, _| *at < start);
                    for p in got.get(&(m.check.name.clone(), s)).into_iter().flatten() {
                        series.insert(p.at, p.value);
                    }
                }
            }
            let settled = floor(q.now.saturating_sub(self.spec.late_ms)).min(end);
            kept.settled = kept.settled.max(settled);
        }
        let kept = self.kept.lock().expect("metrics cache");
        let mut data = MetricData::default();
        for m in &self.spec.metrics {
            let name = &m.check.name;
            let series = |s: usize| -> Vec<Point> {
                kept.points
                    .get(&(name.clone(), s))
                    .into_iter()
                    .flatten()
                    .filter(|(at, _)| **at >= q.from)
                    .map(|(at, value)| Point {
                        at: *at,
                        value: *value,
                    })
                    .collect()
            };
            data.series.insert(name.clone(), [series(0), series(1)]);
        }
        Ok(data)
    }

    async fn preflight(&self, blue: &BlueNow<'_>, now: Millis) -> Checks {
        let (blue, blue_revision, blue_name) = (blue.slot, blue.revision, blue.name);
        // Blue carries all traffic now: a metric with no data for it over
        // the last few periods will have none to compare with either.
        let period = self.spec.period_ms.max(1);
        let end = now / period * period;
        let start = end.saturating_sub(self.spec.late_ms + 5 * period);
        let (mut revisions, mut names) = ([None, None], [None, None]);
        revisions[blue.index()] = blue_revision;
        names[blue.index()] = blue_name;
        let queries = match self.queries(&[blue.index()], revisions, names) {
            Ok(q) => q,
            Err(e) => return Checks::problems(vec![e.to_string()]),
        };
        match self.get(queries, start, end).await {
            Ok(got) => Checks {
                problems: vec![],
                unread: None,
                warnings: self
                    .spec
                    .metrics
                    .iter()
                    .filter(|m| m.compare)
                    .filter(|m| got.get(&(m.check.name.clone(), blue.index())).is_none_or(|p| p.is_empty()))
                    .map(|m| {
                        format!(
                            "analysis metric {:?} has no data for blue (slot {blue}) over the last {}: {}; \
                             check the query and its dimensions, or green will be judged on nothing{}",
                            m.check.name,
                            crate::model::fmt_ms(end - start),
                            describe_filled(&m.source, &self.values(blue.index(), blue_revision, blue_name)),
                            if m.check.must_have_data { " (must_have_data: the step will fail)" } else { "" }
                        )
                    })
                    .collect(),
            },
            Err(e) if e.kind == ErrorKind::Denied => Checks::problems(vec![format!(
                "canary analysis cannot read CloudWatch metrics: {e} (the policy needs cloudwatch:GetMetricData)"
            )]),
            Err(e) => Checks {
                warnings: vec![format!("canary analysis's metrics could not be read now: {e}")],
                ..Checks::default()
            },
        }
    }
}

/// The source's queries with this slot's values filled in, for messages.
fn describe_filled(source: &Source, values: &SlotValues) -> String {
    let one = |q: &Query| {
        let dims: Vec<String> = q
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={}", fill(v, values).unwrap_or_else(|_| v.clone())))
            .collect();
        format!(
            "{} {} {} [{}]",
            q.namespace,
            q.metric,
            q.stat,
            dims.join(", ")
        )
    };
    match source {
        Source::Stat(q) => one(q),
        Source::Expression { queries, .. } => {
            queries.values().map(one).collect::<Vec<_>>().join(" and ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_are_renamed_to_the_slots_query_ids() {
        let e = rename_ids("100 * FILL(errors, 0) / requests", |w| {
            ["errors", "requests"]
                .contains(&w)
                .then(|| format!("m0_1_{w}"))
        });
        assert_eq!(e, "100 * FILL(m0_1_errors, 0) / m0_1_requests");
    }
}

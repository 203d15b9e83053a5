//! What a deployment's analysis measures and how it judges, validated from
//! `[analysis]` (see [`crate::config`]): the metrics, each a query per slot
//! with its checks, the score's thresholds and the timing.
//!
//! A metric's query is written once with placeholders (`{target_group}`,
//! `{service}`, ...) that each slot fills with its own values, so blue and
//! green are measured side by side on the same query.

use super::judge::{MetricCheck, Scoring};
use super::mann_whitney::Alternative;
use crate::model::Millis;
use std::collections::BTreeMap;

/// The most queries one `GetMetricData` call takes; teal reads every query of
/// a deployment (both slots) in one call per poll.
pub const MAX_QUERIES: usize = 500;

/// The placeholders a query may use, each filled per slot.
pub const PLACEHOLDERS: [&str; 7] = [
    "target_group",
    "load_balancer",
    "service",
    "cluster",
    "group",
    "revision",
    "distribution",
];

/// Placeholder values a router learns only as it reads (which CloudFront
/// distribution serves which slot), shared with the metrics reader: the
/// values of slot A and slot B.
pub type LiveValues = std::sync::Arc<std::sync::Mutex<[SlotValues; 2]>>;

/// `[analysis]`, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AnalysisSpec {
    /// The metrics, in config order.
    pub metrics: Vec<MetricSpec>,
    /// Group weights and the pass / marginal thresholds.
    pub scoring: Scoring,
    /// The period of every query (CloudWatch's `Period`).
    pub period_ms: Millis,
    /// How long after a bake the judgment waits for late data points.
    pub late_ms: Millis,
    /// What a marginal judgment does if nobody acts.
    pub on_marginal: OnMarginal,
}

impl AnalysisSpec {
    /// `GetMetricData` queries one poll sends: every metric's, for both slots.
    pub fn query_count(&self) -> usize {
        2 * self
            .metrics
            .iter()
            .map(|m| m.source.query_count())
            .sum::<usize>()
    }

    /// The fewest data points any comparison needs each side.
    pub fn min_points(&self) -> usize {
        self.metrics
            .iter()
            .filter(|m| m.compare)
            .map(|m| m.check.min_points)
            .max()
            .unwrap_or(0)
    }

    /// The shortest bake that can give every compared metric its minimum
    /// data points at this period.
    pub fn shortest_bake_ms(&self) -> Millis {
        self.min_points() as Millis * self.period_ms
    }

    /// What may surprise about a plan's timing (its `steps`): a judged bake
    /// too short for the minimum data points at this period.
    pub fn timing_warnings(&self, steps: &[crate::strategy::Step]) -> Vec<String> {
        let fmt = crate::model::fmt_ms;
        let shortest = self.shortest_bake_ms();
        steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.weight > 0 && s.weight < 100 && s.bake_ms < shortest)
            .map(|(i, s)| {
                format!(
                    "step {} ({}%) bakes {}, but {} data points a slot at a {} period need {}: \
                     its comparison will have too few points (no data{}); bake longer or lower min_points",
                    i + 1,
                    s.weight,
                    fmt(s.bake_ms),
                    self.min_points(),
                    fmt(self.period_ms),
                    fmt(shortest),
                    if self.metrics.iter().any(|m| m.compare && m.check.must_have_data) {
                        ", which fails a must_have_data metric"
                    } else {
                        ", judged on the other metrics"
                    }
                )
            })
            .collect()
    }

    /// How long each judgment waits for late data, when a plan's `steps` have a judged step.
    pub fn late_note(&self, steps: &[crate::strategy::Step]) -> Option<String> {
        let judged = self.metrics.iter().any(|m| m.compare)
            && steps.iter().any(|s| s.weight > 0 && s.weight < 100);
        judged.then(|| {
            format!(
                "each judged step waits {} after its bake for late data points before it is judged",
                crate::model::fmt_ms(self.late_ms)
            )
        })
    }

    /// The metric named `name`.
    pub fn metric(&self, name: &str) -> Option<&MetricSpec> {
        self.metrics.iter().find(|m| m.check.name == name)
    }
}

/// What a marginal judgment does: wait for a person, or act on its own
/// after a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OnMarginal {
    /// How long the step holds before `action`; `None`: until a person acts.
    pub timeout_ms: Option<Millis>,
    /// What happens then.
    pub action: MarginalAction,
}

/// What a marginal hold does at its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarginalAction {
    /// Roll back.
    Rollback,
    /// Take the next step.
    Promote,
}

/// One metric: where it comes from, and what is checked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricSpec {
    /// The comparison with blue (its `name` names the metric everywhere).
    pub check: MetricCheck,
    /// Whether green is compared with blue at the end of each bake (a metric
    /// may have only an absolute bound).
    pub compare: bool,
    /// Green above this fails the step at once (read every poll).
    pub max: Option<f64>,
    /// Green below this fails the step at once.
    pub min: Option<f64>,
    /// The query.
    pub source: Source,
    /// The preset it came from, if any (the local provider measures presets only).
    pub preset: Option<Preset>,
}

/// Where a metric's data points come from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// One metric, one statistic.
    Stat(Query),
    /// Metric math over named queries (`100 * FILL(errors, 0) / requests`).
    Expression {
        /// The expression, over the queries' ids.
        expression: String,
        /// The queries, by id.
        queries: BTreeMap<String, Query>,
    },
}

impl Source {
    /// `GetMetricData` queries for one slot.
    pub fn query_count(&self) -> usize {
        match self {
            Source::Stat(_) => 1,
            Source::Expression { queries, .. } => 1 + queries.len(),
        }
    }

    /// The source in words, for `teal plan`.
    pub fn describe(&self) -> String {
        match self {
            Source::Stat(q) => q.describe(),
            Source::Expression {
                expression,
                queries,
            } => {
                let parts: Vec<String> = queries
                    .iter()
                    .map(|(id, q)| format!("{id} = {}", q.describe()))
                    .collect();
                format!("{expression} where {}", parts.join(", "))
            }
        }
    }
}

/// One CloudWatch metric and statistic, its dimensions templates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Query {
    /// `AWS/ApplicationELB`.
    pub namespace: String,
    /// `TargetResponseTime`.
    pub metric: String,
    /// `Average`, `Sum`, `p99`, ...
    pub stat: String,
    /// Name and value template (`{target_group}`), in config order.
    pub dimensions: Vec<(String, String)>,
}

impl Query {
    /// `AWS/ApplicationELB TargetResponseTime p99 {TargetGroup={target_group}}`.
    pub fn describe(&self) -> String {
        let dims: Vec<String> = self
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{} {} {} {{{}}}",
            self.namespace,
            self.metric,
            self.stat,
            dims.join(", ")
        )
    }

    /// The dimensions with `values` filled in; `None` names a placeholder
    /// this slot has no value for.
    pub fn fill(&self, values: &SlotValues) -> Result<Vec<(String, String)>, String> {
        self.dimensions
            .iter()
            .map(|(k, v)| Ok((k.clone(), fill(v, values)?)))
            .collect()
    }
}

/// The placeholders' values for one slot.
pub type SlotValues = BTreeMap<&'static str, String>;

/// `template` with each `{name}` replaced by its value.
pub fn fill(template: &str, values: &SlotValues) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| format!("unclosed {{ in {template:?}"))?;
        let name = &rest[open + 1..close];
        let value = values
            .get(name)
            .ok_or_else(|| format!("{{{name}}} has no value here"))?;
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The placeholders `template` uses, or the first unknown one.
pub fn placeholders(template: &str) -> Result<Vec<&'static str>, String> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            return Err(format!("unclosed {{ in {template:?}"));
        };
        let name = &rest[open + 1..close];
        match PLACEHOLDERS.iter().find(|p| **p == name) {
            Some(p) => found.push(*p),
            None => {
                return Err(format!(
                    "unknown placeholder {{{name}}}: known are {}",
                    PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        rest = &rest[close + 1..];
    }
    Ok(found)
}

/// Whether `stat` is a CloudWatch statistic: `SampleCount`, `Average`,
/// `Sum`, `Minimum`, `Maximum`, `IQM`, or a percentile-style one (`p99`,
/// `p99.9`, `tm90`, `wm99`, `tc90`, `ts90`, `pr(10:50)` is not accepted).
///
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html>
pub fn is_statistic(stat: &str) -> bool {
    if ["SampleCount", "Average", "Sum", "Minimum", "Maximum", "IQM"].contains(&stat) {
        return true;
    }
    let Some(n) = ["p", "tm", "wm", "tc", "ts"]
        .iter()
        .find_map(|prefix| stat.strip_prefix(prefix))
    else {
        return false;
    };
    let digits_ok = !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit() || c == '.')
        && n.matches('.').count() <= 1
        && !n.starts_with('.')
        && !n.ends_with('.');
    digits_ok && n.parse::<f64>().is_ok_and(|v| v > 0.0 && v <= 100.0)
}

/// The percentile of a `pNN` statistic, if it is one.
pub fn percentile(stat: &str) -> Option<f64> {
    stat.strip_prefix('p')
        .and_then(|n| n.parse::<f64>().ok())
        .filter(|v| *v > 0.0 && *v <= 100.0)
}

/// The built-in metrics: ALB target group metrics, ECS service and EC2
/// Auto Scaling group utilisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// `HTTPCode_Target_5XX_Count` over `RequestCount`, by metric math.
    Alb5xxShare,
    /// `TargetResponseTime` at a percentile (p99 unless `stat` says).
    AlbLatency,
    /// `UnHealthyHostCount`, maximum.
    AlbUnhealthyHosts,
    /// `TargetConnectionErrorCount`, sum.
    AlbConnectionErrors,
    /// ECS service `CPUUtilization`.
    EcsCpu,
    /// ECS service `MemoryUtilization`.
    EcsMemory,
    /// EC2 `CPUUtilization` by Auto Scaling group.
    Ec2Cpu,
}

impl Preset {
    /// Every preset, with its name in config.
    pub const ALL: [(&'static str, Preset); 7] = [
        ("alb-5xx-share", Preset::Alb5xxShare),
        ("alb-latency", Preset::AlbLatency),
        ("alb-unhealthy-hosts", Preset::AlbUnhealthyHosts),
        ("alb-connection-errors", Preset::AlbConnectionErrors),
        ("ecs-cpu", Preset::EcsCpu),
        ("ecs-memory", Preset::EcsMemory),
        ("ec2-cpu", Preset::Ec2Cpu),
    ];

    /// The preset named `name`.
    pub fn named(name: &str) -> Option<Preset> {
        Preset::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
    }

    /// Its name in config.
    pub fn name(self) -> &'static str {
        Preset::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map(|(n, _)| *n)
            .expect("every preset is in ALL")
    }

    /// Which fleet it needs (`None`: any fleet behind an ALB).
    pub fn fleet(self) -> Option<&'static str> {
        match self {
            Preset::EcsCpu | Preset::EcsMemory => Some("ecs"),
            Preset::Ec2Cpu => Some("asg"),
            _ => None,
        }
    }

    /// Whether it reads the ALB's target group metrics.
    pub fn needs_alb(self) -> bool {
        self.fleet().is_none()
    }

    /// Which way is worse: every preset fails by going up.
    pub fn worse(self) -> Alternative {
        Alternative::Greater
    }

    /// Its query; `stat` overrides the latency percentile.
    pub fn source(self, stat: Option<&str>) -> Source {
        let alb = |metric: &str, stat: &str| Query {
            namespace: "AWS/ApplicationELB".into(),
            metric: metric.into(),
            stat: stat.into(),
            dimensions: vec![
                ("LoadBalancer".into(), "{load_balancer}".into()),
                ("TargetGroup".into(), "{target_group}".into()),
            ],
        };
        let ecs = |metric: &str| Query {
            namespace: "AWS/ECS".into(),
            metric: metric.into(),
            stat: "Average".into(),
            dimensions: vec![
                ("ClusterName".into(), "{cluster}".into()),
                ("ServiceName".into(), "{service}".into()),
            ],
        };
        match self {
            // A period without 5xx has no HTTPCode_Target_5XX_Count point at
            // all: FILL counts it as zero, or the share would skip good periods.
            Preset::Alb5xxShare => Source::Expression {
                expression: "FILL(errors, 0) / requests".into(),
                queries: BTreeMap::from([
                    ("errors".into(), alb("HTTPCode_Target_5XX_Count", "Sum")),
                    ("requests".into(), alb("RequestCount", "Sum")),
                ]),
            },
            Preset::AlbLatency => Source::Stat(alb("TargetResponseTime", stat.unwrap_or("p99"))),
            Preset::AlbUnhealthyHosts => Source::Stat(alb("UnHealthyHostCount", "Maximum")),
            Preset::AlbConnectionErrors => Source::Stat(alb("TargetConnectionErrorCount", "Sum")),
            Preset::EcsCpu => Source::Stat(ecs("CPUUtilization")),
            Preset::EcsMemory => Source::Stat(ecs("MemoryUtilization")),
            Preset::Ec2Cpu => Source::Stat(Query {
                namespace: "AWS/EC2".into(),
                metric: "CPUUtilization".into(),
                stat: "Average".into(),
                dimensions: vec![("AutoScalingGroupName".into(), "{group}".into())],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_cloudwatch_ones() {
        for ok in ["Average", "Sum", "p99", "p99.9", "tm90", "p100", "IQM"] {
            assert!(is_statistic(ok), "{ok}");
        }
        for bad in [
            "average", "p", "p0", "p101", "p9.", "p.5", "pXX", "max", "p9..9",
        ] {
            assert!(!is_statistic(bad), "{bad}");
        }
        assert_eq!(percentile("p99.5"), Some(99.5));
        assert_eq!(percentile("Average"), None);
    }

    #[test]
    fn placeholders_fill_per_slot_and_unknown_ones_are_named() {
        let values = SlotValues::from([("service", "web-a".to_string())]);
        assert_eq!(fill("svc={service}!", &values).unwrap(), "svc=web-a!");
        assert!(fill("{cluster}", &values)
            .unwrap_err()
            .contains("{cluster}"));
        assert_eq!(
            placeholders("{service}/{revision}").unwrap(),
            ["service", "revision"]
        );
        let e = placeholders("{servcie}").unwrap_err();
        assert!(
            e.contains("unknown placeholder {servcie}") && e.contains("{target_group}"),
            "{e}"
        );
    }
}

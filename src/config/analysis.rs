//! `[analysis]`: canary analysis, validated into an [`AnalysisSpec`].
//!
//! ```toml
//! [analysis]
//! confidence = 0.99          # the Mann-Whitney test must be this sure
//! min_points = 20            # per slot, per bake
//! pass = 95                  # score thresholds, 0 to 100
//! marginal = 75
//! on_marginal = { timeout = "30m", action = "rollback" }
//!
//! [[analysis.metric]]
//! preset = "alb-5xx-share"
//! max = 0.05                 # green above this fails at once
//! critical = true
//!
//! [[analysis.metric]]
//! name = "orders-failed"
//! namespace = "Shop"
//! metric = "OrderFailures"
//! stat = "Sum"
//! dimensions = { Service = "{service}" }
//! ```
//!
//! Every error is located and names the field; what a provider cannot
//! measure (a custom query on the local provider, an ALB preset behind
//! Route 53) is refused here, before anything runs.

use super::{FleetConfig, RouterConfig};
use crate::analysis::judge::{MetricCheck, Scoring};
use crate::analysis::mann_whitney::Alternative;
use crate::analysis::spec::{
    is_statistic, placeholders, AnalysisSpec, MarginalAction, MetricSpec, OnMarginal, Preset,
    Query, Source, MAX_QUERIES,
};
use crate::diag::{InputError, SourceFile};
use crate::model::Millis;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The confidence the benchmark (docs/ANALYSIS-BENCHMARK.md) found to keep
/// both false positives and false negatives under 1% from 20 points a side.
pub const DEFAULT_CONFIDENCE: f64 = 0.99;
/// Data points per slot a comparison needs by default.
pub const DEFAULT_MIN_POINTS: usize = 20;
/// How much worse green's mean may be by default (10%), as in the benchmark.
pub const DEFAULT_ALLOWED_EFFECT: f64 = 0.1;

/// `[analysis]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnalysis {
    /// Every query's period (`60s`; CloudWatch: 1, 5, 10, 30 s or a multiple of 60 s).
    pub period: Option<Spanned<String>>,
    /// How long the judgment waits for late data after a bake.
    pub late: Option<Spanned<String>>,
    /// Default confidence of every comparison, in (0, 1).
    pub confidence: Option<Spanned<f64>>,
    /// Default minimum data points per slot.
    pub min_points: Option<Spanned<i64>>,
    /// Default allowed effect (green's mean over blue's, minus 1).
    pub allowed_effect: Option<Spanned<f64>>,
    /// The score at or above which a step passes (default 95).
    pub pass: Option<Spanned<f64>>,
    /// The score at or above which it is marginal (default 75).
    pub marginal: Option<Spanned<f64>>,
    /// Group weights for the score.
    #[serde(default)]
    pub groups: BTreeMap<String, Spanned<f64>>,
    /// What a marginal judgment does if nobody acts.
    pub on_marginal: Option<Spanned<RawOnMarginal>>,
    /// The metrics.
    #[serde(default)]
    pub metric: Vec<Spanned<RawMetric>>,
}

/// `on_marginal = { timeout = "30m", action = "rollback" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOnMarginal {
    /// How long to hold.
    pub timeout: Option<Spanned<String>>,
    /// `rollback` (default) or `promote`.
    pub action: Option<Spanned<String>>,
}

/// `[[analysis.metric]]`: a preset, a query, or an expression over queries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetric {
    /// Its name (default: the preset's).
    pub name: Option<Spanned<String>>,
    /// A built-in metric.
    pub preset: Option<Spanned<String>>,
    /// The query's namespace.
    pub namespace: Option<Spanned<String>>,
    /// The query's metric name.
    pub metric: Option<Spanned<String>>,
    /// The statistic (`Average`, `p99`, ...).
    pub stat: Option<Spanned<String>>,
    /// Dimension name to value template.
    pub dimensions: Option<BTreeMap<String, Spanned<String>>>,
    /// Metric math over `queries`.
    pub expression: Option<Spanned<String>>,
    /// The expression's queries, by id.
    pub queries: Option<BTreeMap<String, Spanned<RawQuery>>>,
    /// `increase` (default), `decrease` or `either`: which way is worse.
    pub direction: Option<Spanned<String>>,
    /// Compare with blue at the end of each bake (default true).
    pub compare: Option<bool>,
    /// This metric's confidence.
    pub confidence: Option<Spanned<f64>>,
    /// This metric's minimum data points.
    pub min_points: Option<Spanned<i64>>,
    /// This metric's allowed effect.
    pub allowed_effect: Option<Spanned<f64>>,
    /// Its failure fails the step.
    #[serde(default)]
    pub critical: bool,
    /// No data fails it.
    #[serde(default)]
    pub must_have_data: bool,
    /// Its group for the score (default: its name).
    pub group: Option<Spanned<String>>,
    /// Green above this fails at once.
    pub max: Option<Spanned<f64>>,
    /// Green below this fails at once.
    pub min: Option<Spanned<f64>>,
}

/// One query of an expression.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    /// Namespace.
    pub namespace: Spanned<String>,
    /// Metric name.
    pub metric: Spanned<String>,
    /// Statistic.
    pub stat: Spanned<String>,
    /// Dimension name to value template.
    #[serde(default)]
    pub dimensions: BTreeMap<String, Spanned<String>>,
}

/// What the analysis may read here: the placeholders the fleet and router
/// fill, and whether custom CloudWatch queries can run at all.
struct Reach<'a> {
    fleet: &'a FleetConfig,
    router: &'a RouterConfig,
}

impl Reach<'_> {
    fn is_sim(&self) -> bool {
        matches!(self.router, RouterConfig::Sim)
    }

    fn is_local(&self) -> bool {
        matches!(self.router, RouterConfig::Local { .. })
    }

    /// Why `placeholder` has no value here, if it has none.
    fn missing(&self, placeholder: &str) -> Option<String> {
        if self.is_sim() {
            return None;
        }
        let ok = self
            .router
            .fills(placeholder)
            .or_else(|| self.fleet.fills(placeholder))
            .unwrap_or(true);
        (!ok).then(|| {
            format!(
                "{{{placeholder}}} has no value with fleet.kind = {:?} and router.kind = {:?}",
                self.fleet.kind(),
                self.router.kind()
            )
        })
    }

    /// Why `preset` cannot be measured here, if it cannot.
    fn refuses(&self, preset: Preset) -> Option<String> {
        if self.is_sim() {
            return None;
        }
        if self.is_local() {
            return (!matches!(preset, Preset::Alb5xxShare | Preset::AlbLatency)).then(|| {
                format!(
                    "the local proxy measures alb-5xx-share and alb-latency only, not {:?}",
                    preset.name()
                )
            });
        }
        if preset.needs_alb() && matches!(self.router, RouterConfig::Nlb { .. }) {
            return Some(format!(
                "preset {:?} reads an ALB target group's HTTP metrics; an NLB has none \
                 (AWS/NetworkELB counts flows and resets): write the query with \
                 {{target_group}} and {{load_balancer}} instead",
                preset.name()
            ));
        }
        if preset.needs_alb() && !matches!(self.router, RouterConfig::Alb { .. }) {
            return Some(format!(
                "preset {:?} reads an ALB target group's metrics; router.kind = {:?} has no load balancer",
                preset.name(),
                self.router.kind()
            ));
        }
        match preset.fleet() {
            Some(kind) if kind != self.fleet.kind() => Some(format!(
                "preset {:?} is for fleet.kind = {kind:?}, not {:?}",
                preset.name(),
                self.fleet.kind()
            )),
            _ => None,
        }
    }
}

pub(super) fn validate_analysis(
    file: &SourceFile,
    span: std::ops::Range<usize>,
    a: &RawAnalysis,
    fleet: &FleetConfig,
    router: &RouterConfig,
) -> Result<AnalysisSpec, InputError> {
    let reach = Reach { fleet, router };
    let dur = |v: &Option<Spanned<String>>, field: &str| -> Result<Option<Millis>, InputError> {
        v.as_ref()
            .map(|v| crate::strategy::raw::duration(file, v, field))
            .transpose()
    };
    let default_period = if reach.is_local() { 1_000 } else { 60_000 };
    let period_ms = dur(&a.period, "analysis.period")?.unwrap_or(default_period);
    let cloudwatch_period = [1_000, 5_000, 10_000, 30_000].contains(&period_ms)
        || (period_ms >= 60_000 && period_ms % 60_000 == 0);
    if !cloudwatch_period && !reach.is_local() {
        return Err(file.error(
            a.period.as_ref().map_or(span.clone(), |p| p.span()),
            "analysis.period",
            format!(
                "a CloudWatch period is 1s, 5s, 10s, 30s or a multiple of 60s, got {}",
                crate::model::fmt_ms(period_ms)
            ),
        ));
    }
    if period_ms == 0 {
        return Err(file.error(
            a.period.as_ref().map_or(span.clone(), |p| p.span()),
            "analysis.period",
            "the period must be longer than 0s",
        ));
    }
    let late_ms = dur(&a.late, "analysis.late")?.unwrap_or(2 * period_ms);
    let confidence = number(
        file,
        a.confidence.as_ref(),
        "analysis.confidence",
        CONFIDENCE,
    )?
    .unwrap_or(DEFAULT_CONFIDENCE);
    let min_points =
        points(file, a.min_points.as_ref(), "analysis.min_points")?.unwrap_or(DEFAULT_MIN_POINTS);
    let allowed_effect = number(
        file,
        a.allowed_effect.as_ref(),
        "analysis.allowed_effect",
        EFFECT,
    )?
    .unwrap_or(DEFAULT_ALLOWED_EFFECT);
    let pass = number(file, a.pass.as_ref(), "analysis.pass", SCORE)?.unwrap_or(95.0);
    let marginal = number(file, a.marginal.as_ref(), "analysis.marginal", SCORE)?.unwrap_or(75.0);
    if marginal > pass {
        let at = a
            .marginal
            .as_ref()
            .or(a.pass.as_ref())
            .map_or(span.clone(), |v| v.span());
        return Err(file.error(
            at,
            "analysis.marginal",
            format!("marginal ({marginal}) must not be above pass ({pass}): a score between them holds the step"),
        ));
    }
    let mut weights = BTreeMap::new();
    for (group, w) in &a.groups {
        let field = format!("analysis.groups.{group}");
        if !(*w.get_ref() > 0.0 && w.get_ref().is_finite()) {
            return Err(file.error(
                w.span(),
                &field,
                format!("a group's weight is a number above 0, got {}", w.get_ref()),
            ));
        }
        weights.insert(group.clone(), *w.get_ref());
    }
    let on_marginal = match &a.on_marginal {
        None => OnMarginal {
            timeout_ms: None,
            action: MarginalAction::Rollback,
        },
        Some(o) => {
            let o_ref = o.get_ref();
            let action = match &o_ref.action {
                None => MarginalAction::Rollback,
                Some(v) => match v.get_ref().as_str() {
                    "rollback" => MarginalAction::Rollback,
                    "promote" => MarginalAction::Promote,
                    other => {
                        return Err(file.error(
                            v.span(),
                            "analysis.on_marginal.action",
                            format!("action is \"rollback\" or \"promote\", got {other:?}"),
                        ))
                    }
                },
            };
            let Some(timeout) = dur(&o_ref.timeout, "analysis.on_marginal.timeout")? else {
                return Err(file.error(
                    o.span(),
                    "analysis.on_marginal.timeout",
                    "on_marginal needs a timeout (\"30m\"): without one a marginal step waits for a person, which is the default",
                ));
            };
            if timeout == 0 {
                return Err(file.error(
                    o_ref.timeout.as_ref().map_or(o.span(), |t| t.span()),
                    "analysis.on_marginal.timeout",
                    "the timeout must be longer than 0s",
                ));
            }
            OnMarginal {
                timeout_ms: Some(timeout),
                action,
            }
        }
    };
    if a.metric.is_empty() {
        return Err(file.error(
            span,
            "analysis.metric",
            "[analysis] needs at least one [[analysis.metric]] (a preset such as \"alb-5xx-share\", or a query)",
        ));
    }
    let defaults = Defaults {
        confidence,
        min_points,
        allowed_effect,
    };
    let mut metrics: Vec<MetricSpec> = Vec::new();
    for (i, m) in a.metric.iter().enumerate() {
        let spec = validate_metric(file, i, m, &defaults, &reach)?;
        if metrics.iter().any(|x| x.check.name == spec.check.name) {
            return Err(file.error(
                m.get_ref().name.as_ref().map_or(m.span(), |n| n.span()),
                &format!("analysis.metric[{i}].name"),
                format!(
                    "two metrics are named {:?}; give one a `name`",
                    spec.check.name
                ),
            ));
        }
        metrics.push(spec);
    }
    let spec = AnalysisSpec {
        metrics,
        scoring: Scoring {
            weights,
            pass,
            marginal,
        },
        period_ms,
        late_ms,
        on_marginal,
    };
    if spec.query_count() > MAX_QUERIES {
        return Err(file.error(
            span,
            "analysis.metric",
            format!(
                "these metrics make {} GetMetricData queries a poll (each metric's queries, for both slots); one call takes at most {MAX_QUERIES}",
                spec.query_count()
            ),
        ));
    }
    Ok(spec)
}

struct Defaults {
    confidence: f64,
    min_points: usize,
    allowed_effect: f64,
}

fn validate_metric(
    file: &SourceFile,
    i: usize,
    m: &Spanned<RawMetric>,
    d: &Defaults,
    reach: &Reach,
) -> Result<MetricSpec, InputError> {
    let field = |f: &str| format!("analysis.metric[{i}].{f}");
    let r = m.get_ref();
    let custom = r.namespace.is_some() || r.metric.is_some() || r.dimensions.is_some();
    let (source, preset, default_name, worse) = match (&r.preset, &r.expression) {
        (Some(p), None) if !custom => {
            let preset = Preset::named(p.get_ref()).ok_or_else(|| {
                file.error(
                    p.span(),
                    &field("preset"),
                    format!(
                        "unknown preset {:?}; presets are: {}",
                        p.get_ref(),
                        Preset::ALL.map(|(n, _)| n).join(", ")
                    ),
                )
            })?;
            if let Some(why) = reach.refuses(preset) {
                return Err(file.error(p.span(), &field("preset"), why));
            }
            if let Some(s) = &r.stat {
                if preset != Preset::AlbLatency {
                    return Err(file.error(
                        s.span(),
                        &field("stat"),
                        format!("preset {:?} has its own statistic; `stat` sets alb-latency's percentile", preset.name()),
                    ));
                }
                statistic(file, s, &field("stat"))?;
            }
            let stat = r.stat.as_ref().map(|s| s.get_ref().as_str());
            (preset.source(stat), Some(preset), Some(preset.name().to_string()), preset.worse())
        }
        (Some(p), _) => {
            return Err(file.error(
                p.span(),
                &field("preset"),
                "a metric is a preset, a query (namespace, metric, stat, dimensions) or an expression with queries: give one",
            ))
        }
        (None, Some(e)) => {
            if custom || r.stat.is_some() {
                return Err(file.error(
                    e.span(),
                    &field("expression"),
                    "an expression's queries go in `queries`; namespace, metric, stat and dimensions belong to a single query",
                ));
            }
            (expression(file, i, e, r.queries.as_ref(), reach)?, None, None, Alternative::Greater)
        }
        (None, None) => {
            if !custom {
                return Err(file.error(
                    m.span(),
                    &format!("analysis.metric[{i}]"),
                    "give `preset`, a query (namespace, metric, stat, dimensions), or `expression` with `queries`",
                ));
            }
            let q = query(
                file,
                &field(""),
                m.span(),
                r.namespace.as_ref(),
                r.metric.as_ref(),
                r.stat.as_ref(),
                r.dimensions.as_ref(),
                reach,
            )?;
            (Source::Stat(q), None, None, Alternative::Greater)
        }
    };
    if preset.is_none() && reach.is_local() {
        return Err(file.error(
            m.span(),
            &format!("analysis.metric[{i}]"),
            "the local provider measures presets only (alb-5xx-share, alb-latency); a CloudWatch query needs an AWS router",
        ));
    }
    let name = match (&r.name, default_name) {
        (Some(n), _) => {
            let s = n.get_ref();
            let ok = (1..=64).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(file.error(
                    n.span(),
                    &field("name"),
                    format!(
                        "a metric's name is 1 to 64 letters, digits, '-', '_' or '.', got {s:?}"
                    ),
                ));
            }
            s.clone()
        }
        (None, Some(n)) => n,
        (None, None) => {
            return Err(file.error(
                m.span(),
                &field("name"),
                "a query or expression needs a `name`, to report it by",
            ))
        }
    };
    let worse = match &r.direction {
        None => worse,
        Some(v) => match v.get_ref().as_str() {
            "increase" => Alternative::Greater,
            "decrease" => Alternative::Less,
            "either" => Alternative::TwoSided,
            other => {
                return Err(file.error(
                    v.span(),
                    &field("direction"),
                    format!("direction is \"increase\", \"decrease\" or \"either\" (which way is worse), got {other:?}"),
                ))
            }
        },
    };
    let max = number(file, r.max.as_ref(), &field("max"), BOUND)?;
    let min = number(file, r.min.as_ref(), &field("min"), BOUND)?;
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            return Err(file.error(
                r.min.as_ref().map_or(m.span(), |v| v.span()),
                &field("min"),
                format!("min ({lo}) is above max ({hi}): green would always fail"),
            ));
        }
    }
    let compare = r.compare.unwrap_or(true);
    if !compare && max.is_none() && min.is_none() {
        return Err(file.error(
            m.span(),
            &format!("analysis.metric[{i}]"),
            "with compare = false and neither max nor min, this metric checks nothing",
        ));
    }
    let group = match &r.group {
        Some(g) if g.get_ref().trim().is_empty() => {
            return Err(file.error(g.span(), &field("group"), "must not be empty"))
        }
        Some(g) => g.get_ref().clone(),
        None => name.clone(),
    };
    Ok(MetricSpec {
        check: MetricCheck {
            name,
            worse,
            confidence: number(
                file,
                r.confidence.as_ref(),
                &field("confidence"),
                CONFIDENCE,
            )?
            .unwrap_or(d.confidence),
            allowed_effect: number(
                file,
                r.allowed_effect.as_ref(),
                &field("allowed_effect"),
                EFFECT,
            )?
            .unwrap_or(d.allowed_effect),
            critical: r.critical,
            must_have_data: r.must_have_data,
            min_points: points(file, r.min_points.as_ref(), &field("min_points"))?
                .unwrap_or(d.min_points),
            group,
        },
        compare,
        max,
        min,
        source,
        preset,
    })
}

fn expression(
    file: &SourceFile,
    i: usize,
    e: &Spanned<String>,
    queries: Option<&BTreeMap<String, Spanned<RawQuery>>>,
    reach: &Reach,
) -> Result<Source, InputError> {
    let field = format!("analysis.metric[{i}].expression");
    let Some(queries) = queries.filter(|q| !q.is_empty()) else {
        return Err(file.error(
            e.span(),
            &field,
            "an expression needs `queries` (ids to queries) to compute over",
        ));
    };
    let mut out = BTreeMap::new();
    for (id, q) in queries {
        let qf = format!("analysis.metric[{i}].queries.{id}");
        let valid_id = id.starts_with(|c: char| c.is_ascii_lowercase())
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_id {
            return Err(file.error(
                q.span(),
                &qf,
                format!("a query id starts with a lowercase letter and has only letters, digits and '_' (CloudWatch's rule), got {id:?}"),
            ));
        }
        let r = q.get_ref();
        let query = query(
            file,
            &format!("{qf}."),
            q.span(),
            Some(&r.namespace),
            Some(&r.metric),
            Some(&r.stat),
            Some(&r.dimensions),
            reach,
        )?;
        out.insert(id.clone(), query);
    }
    // Every lowercase word in the expression must be a query (CloudWatch's
    // functions are upper case: FILL, SUM, IF, ...).
    let text = e.get_ref();
    if text.trim().is_empty() {
        return Err(file.error(e.span(), &field, "must not be empty"));
    }
    for word in text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_lowercase()))
    {
        if !out.contains_key(word) {
            return Err(file.error(
                e.span(),
                &field,
                format!(
                    "the expression uses {word:?}, which is not one of its queries ({})",
                    out.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    Ok(Source::Expression {
        expression: text.clone(),
        queries: out,
    })
}

#[allow(clippy::too_many_arguments)]
fn query(
    file: &SourceFile,
    prefix: &str,
    span: std::ops::Range<usize>,
    namespace: Option<&Spanned<String>>,
    metric: Option<&Spanned<String>>,
    stat: Option<&Spanned<String>>,
    dimensions: Option<&BTreeMap<String, Spanned<String>>>,
    reach: &Reach,
) -> Result<Query, InputError> {
    let need = |v: Option<&Spanned<String>>, f: &str| -> Result<String, InputError> {
        match v {
            None => Err(file.error(
                span.clone(),
                &format!("{prefix}{f}"),
                format!("a query needs `{f}`"),
            )),
            Some(v) => super::fields::non_empty(file, v, &format!("{prefix}{f}")),
        }
    };
    let namespace = need(namespace, "namespace")?;
    let metric = need(metric, "metric")?;
    let stat_v = need(stat, "stat")?;
    if let Some(s) = stat {
        statistic(file, s, &format!("{prefix}stat"))?;
    }
    let mut dims = Vec::new();
    for (k, v) in dimensions.into_iter().flatten() {
        let f = format!("{prefix}dimensions.{k}");
        let value = super::fields::non_empty(file, v, &f)?;
        let used = placeholders(&value).map_err(|e| file.error(v.span(), &f, e))?;
        if let Some(why) = used.iter().find_map(|p| reach.missing(p)) {
            return Err(file.error(v.span(), &f, why));
        }
        dims.push((k.clone(), value));
    }
    if dims.len() > 30 {
        return Err(file.error(
            span,
            &format!("{prefix}dimensions"),
            format!(
                "a CloudWatch metric has at most 30 dimensions, got {}",
                dims.len()
            ),
        ));
    }
    Ok(Query {
        namespace,
        metric,
        stat: stat_v,
        dimensions: dims,
    })
}

fn statistic(file: &SourceFile, s: &Spanned<String>, field: &str) -> Result<(), InputError> {
    if is_statistic(s.get_ref()) {
        return Ok(());
    }
    Err(file.error(
        s.span(),
        field,
        format!(
            "{:?} is not a CloudWatch statistic: SampleCount, Average, Sum, Minimum, Maximum, IQM, or a percentile like p99 or p99.9 (also tm90, wm90, tc90, ts90)",
            s.get_ref()
        ),
    ))
}

/// What a number must be, and how to say so.
struct Rule {
    ok: fn(f64) -> bool,
    says: &'static str,
}

const CONFIDENCE: Rule = Rule {
    ok: |c| c > 0.0 && c < 1.0,
    says: "a confidence is between 0 and 1, exclusive (0.99: p below 0.01)",
};
const EFFECT: Rule = Rule {
    ok: |x| x >= 0.0,
    says: "must be 0 or more (0.1: green's mean may be 10% worse than blue's)",
};
const BOUND: Rule = Rule {
    ok: |x| x >= 0.0,
    says: "a bound is a number, 0 or more",
};
const SCORE: Rule = Rule {
    ok: |x| (0.0..=100.0).contains(&x),
    says: "a score threshold is 0 to 100",
};

/// A number that must follow `rule`; else an error that says it and what was given.
fn number(
    file: &SourceFile,
    v: Option<&Spanned<f64>>,
    field: &str,
    rule: Rule,
) -> Result<Option<f64>, InputError> {
    match v {
        None => Ok(None),
        Some(x) if x.get_ref().is_finite() && (rule.ok)(*x.get_ref()) => Ok(Some(*x.get_ref())),
        Some(x) => Err(file.error(
            x.span(),
            field,
            format!("{}, got {}", rule.says, x.get_ref()),
        )),
    }
}

fn points(
    file: &SourceFile,
    v: Option<&Spanned<i64>>,
    field: &str,
) -> Result<Option<usize>, InputError> {
    match v {
        None => Ok(None),
        Some(n) if (3..=10_000).contains(n.get_ref()) => Ok(Some(*n.get_ref() as usize)),
        Some(n) => Err(file.error(
            n.span(),
            field,
            format!(
                "must be 3..=10000 (with fewer than 3 points a side the test can never be sure; see docs/ANALYSIS-BENCHMARK.md), got {}",
                n.get_ref()
            ),
        )),
    }
}

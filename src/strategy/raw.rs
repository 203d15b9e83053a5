//! The serde form of a strategy table and its validation.

use super::{expand_canary, expand_linear, Approval, OnTimeout, Rolling, Shape, Step, Strategy};
use crate::diag::{InputError, SourceFile};
use crate::model::Millis;
use serde::Deserialize;
use std::ops::Range;
use toml::Spanned;

/// Default keep-alive before blue is retired.
pub const DEFAULT_KEEP_ALIVE: &str = "5m";
/// Default gate poll interval.
pub const DEFAULT_POLL: &str = "10s";
/// Default time green may take to become healthy.
pub const DEFAULT_GREEN_HEALTHY_TIMEOUT: &str = "10m";

/// A strategy table as written, either a strategy file or a config's
/// `[strategy]` section (which may also `name` a built-in or point at a `file`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStrategy {
    /// A built-in strategy to use (config only).
    pub name: Option<Spanned<String>>,
    /// A strategy file to use, relative to the config file (config only).
    pub file: Option<Spanned<String>>,
    /// One line for people.
    pub description: Option<String>,
    /// Explicit steps.
    pub steps: Option<Spanned<Vec<RawStep>>>,
    /// Linear shape.
    pub linear: Option<Spanned<RawLinear>>,
    /// Canary shape.
    pub canary: Option<Spanned<RawCanary>>,
    /// Rolling shape.
    pub rolling: Option<Spanned<RawRolling>>,
    /// Keep-alive before blue is retired.
    pub keep_alive: Option<Spanned<String>>,
    /// Gate poll interval.
    pub poll: Option<Spanned<String>>,
    /// Green-healthy timeout.
    pub green_healthy_timeout: Option<Spanned<String>>,
}

/// One explicit step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Percent of traffic to green.
    pub weight: Spanned<i64>,
    /// Bake time (default 0).
    pub bake: Option<Spanned<String>>,
    /// Wait for a person's approval after the bake: `true`, or
    /// `{ timeout, on_timeout }`.
    pub approve: Option<Spanned<toml::Value>>,
}

/// `linear = { step, interval }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLinear {
    /// Percent added per step.
    pub step: Spanned<i64>,
    /// Time between steps.
    pub interval: Spanned<String>,
}

/// `canary = { percent, bake }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanary {
    /// Percent of traffic in the canary step.
    pub percent: Spanned<i64>,
    /// Bake time of the canary step.
    pub bake: Spanned<String>,
    /// Wait for a person's approval after the canary's bake.
    pub approve: Option<Spanned<toml::Value>>,
}

/// `rolling = { min_healthy_percent, max_percent, bake, step }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRolling {
    /// Capacity kept healthy during the update.
    pub min_healthy_percent: Spanned<i64>,
    /// Upper bound of capacity during the update.
    pub max_percent: Spanned<i64>,
    /// Bake after the update (and at each checkpoint but the last).
    pub bake: Option<Spanned<String>>,
    /// Percent of an Auto Scaling group between checkpoints.
    pub step: Option<Spanned<i64>>,
    /// Wait for a person's approval after the bake, before success.
    pub approve: Option<Spanned<toml::Value>>,
}

/// Parse a human duration (`90s`, `5m`, `1h30m`) at a span.
pub fn duration(file: &SourceFile, v: &Spanned<String>, field: &str) -> Result<Millis, InputError> {
    humantime::parse_duration(v.get_ref().trim())
        .map(|d| d.as_millis() as Millis)
        .map_err(|e| {
            file.error(
                v.span(),
                field,
                format!(
                    "bad duration {:?} ({e}); write it like 90s, 5m or 1h30m",
                    v.get_ref()
                ),
            )
        })
}

/// Parse `approve = true | false | { timeout = "4h", on_timeout = "rollback" }`
/// at `field`; the timeout is checked against the poll interval later
/// ([`check_approval`]).
fn approval(
    file: &SourceFile,
    v: &Spanned<toml::Value>,
    field: &str,
) -> Result<Option<Approval>, InputError> {
    let table = match v.get_ref() {
        toml::Value::Boolean(false) => return Ok(None),
        toml::Value::Boolean(true) => {
            return Ok(Some(Approval {
                timeout_ms: None,
                on_timeout: OnTimeout::Rollback,
            }))
        }
        toml::Value::Table(t) => t,
        other => {
            return Err(file.error(
                v.span(),
                field,
                format!(
                    "approve is `true` or a table like {{ timeout = \"4h\", on_timeout = \"rollback\" }}, got {}",
                    other.type_str()
                ),
            ))
        }
    };
    let mut a = Approval {
        timeout_ms: None,
        on_timeout: OnTimeout::Rollback,
    };
    for (key, value) in table {
        let text = |what: &str| {
            value.as_str().map(str::to_string).ok_or_else(|| {
                file.error(
                    v.span(),
                    &format!("{field}.{key}"),
                    format!("{key} is {what}, got {}", value.type_str()),
                )
            })
        };
        match key.as_str() {
            "timeout" => {
                let t = text("a duration like \"4h\"")?;
                let ms = humantime::parse_duration(t.trim())
                    .map_err(|e| {
                        file.error(
                            v.span(),
                            &format!("{field}.timeout"),
                            format!("bad duration {t:?} ({e}); write it like 30m or 4h"),
                        )
                    })?
                    .as_millis() as Millis;
                a.timeout_ms = Some(ms);
            }
            "on_timeout" => {
                a.on_timeout = match text("\"rollback\", \"promote\" or \"hold\"")?.as_str() {
                    "rollback" => OnTimeout::Rollback,
                    "promote" => OnTimeout::Promote,
                    "hold" => OnTimeout::Hold,
                    other => {
                        return Err(file.error(
                            v.span(),
                            &format!("{field}.on_timeout"),
                            format!(
                            "on_timeout is \"rollback\", \"promote\" or \"hold\", got {other:?}"
                        ),
                        ))
                    }
                };
            }
            other => {
                return Err(file.error(
                    v.span(),
                    &format!("{field}.{other}"),
                    format!("unknown key `{other}` in approve: expected `timeout` or `on_timeout`"),
                ))
            }
        }
    }
    if a.timeout_ms.is_none() && table.contains_key("on_timeout") {
        return Err(file.error(
            v.span(),
            &format!("{field}.on_timeout"),
            "on_timeout needs a timeout: give `timeout` too",
        ));
    }
    Ok(Some(a))
}

/// An approval's timeout must let the gates be read at least once: no
/// shorter than the poll interval.
fn check_approval(
    file: &SourceFile,
    a: Option<Approval>,
    at: &Spanned<toml::Value>,
    field: &str,
    poll_ms: Millis,
) -> Result<(), InputError> {
    match a.and_then(|a| a.timeout_ms) {
        Some(t) if t < poll_ms => Err(file.error(
            at.span(),
            &format!("{field}.timeout"),
            format!(
                "the approval timeout ({}) is shorter than the poll interval ({}): the gates would not be read once while it waits",
                crate::model::fmt_ms(t),
                crate::model::fmt_ms(poll_ms)
            ),
        )),
        _ => Ok(()),
    }
}

fn percent(
    file: &SourceFile,
    v: &Spanned<i64>,
    field: &str,
    range: Range<i64>,
    what: &str,
) -> Result<u8, InputError> {
    let n = *v.get_ref();
    if !range.contains(&n) {
        return Err(file.error(
            v.span(),
            field,
            format!(
                "{what} must be {}..={}, got {n}",
                range.start,
                range.end - 1
            ),
        ));
    }
    Ok(n as u8)
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

impl RawStrategy {
    /// True when this table gives a shape or a setting of its own (as opposed to
    /// only naming a built-in or a file).
    pub fn has_shape(&self) -> bool {
        self.steps.is_some()
            || self.linear.is_some()
            || self.canary.is_some()
            || self.rolling.is_some()
    }

    /// Validate into a [`Strategy`]. `prefix` is the dotted path of this table
    /// (`strategy` in a config, empty in a strategy file). `base` supplies
    /// the shape and defaults when this table only overrides settings.
    pub fn validate(
        &self,
        name: &str,
        file: &SourceFile,
        prefix: &str,
        base: Option<&Strategy>,
    ) -> Result<Strategy, InputError> {
        let shapes: Vec<(&str, Range<usize>)> = [
            self.steps.as_ref().map(|s| ("steps", s.span())),
            self.linear.as_ref().map(|s| ("linear", s.span())),
            self.canary.as_ref().map(|s| ("canary", s.span())),
            self.rolling.as_ref().map(|s| ("rolling", s.span())),
        ]
        .into_iter()
        .flatten()
        .collect();
        if shapes.len() > 1 {
            let (second, span) = shapes[1].clone();
            return Err(file.error(
                span,
                &join(prefix, second),
                format!(
                    "a strategy has one shape, but both `{}` and `{second}` are given",
                    shapes[0].0
                ),
            ));
        }
        let shape = if let Some(steps) = &self.steps {
            Shape::BlueGreen {
                steps: self.validate_steps(steps, file, prefix)?,
            }
        } else if let Some(l) = &self.linear {
            let f = join(prefix, "linear");
            let step = percent(
                file,
                &l.get_ref().step,
                &format!("{f}.step"),
                1..101,
                "step",
            )?;
            let interval = duration(file, &l.get_ref().interval, &format!("{f}.interval"))?;
            Shape::BlueGreen {
                steps: expand_linear(step, interval),
            }
        } else if let Some(c) = &self.canary {
            let f = join(prefix, "canary");
            let p = percent(
                file,
                &c.get_ref().percent,
                &format!("{f}.percent"),
                1..100,
                "canary percent",
            )?;
            let bake = duration(file, &c.get_ref().bake, &format!("{f}.bake"))?;
            let mut steps = expand_canary(p, bake);
            if let Some(v) = &c.get_ref().approve {
                steps[0].approve = approval(file, v, &format!("{f}.approve"))?;
            }
            Shape::BlueGreen { steps }
        } else if let Some(r) = &self.rolling {
            let f = join(prefix, "rolling");
            let r = r.get_ref();
            let min = percent(
                file,
                &r.min_healthy_percent,
                &format!("{f}.min_healthy_percent"),
                0..101,
                "min_healthy_percent",
            )?;
            let max = *r.max_percent.get_ref();
            if !(100..=200).contains(&max) {
                return Err(file.error(
                    r.max_percent.span(),
                    &format!("{f}.max_percent"),
                    format!("max_percent must be 100..=200, got {max}"),
                ));
            }
            if min == 100 && max == 100 {
                return Err(file.error(
                    r.max_percent.span(),
                    &format!("{f}.max_percent"),
                    "with min_healthy_percent = 100, max_percent must be above 100 or nothing can be replaced",
                ));
            }
            let bake = match &r.bake {
                Some(b) => duration(file, b, &format!("{f}.bake"))?,
                None => 0,
            };
            let step = match &r.step {
                Some(s) => Some(percent(file, s, &format!("{f}.step"), 1..100, "step")?),
                None => None,
            };
            let approve = match &r.approve {
                Some(v) => approval(file, v, &format!("{f}.approve"))?,
                None => None,
            };
            Shape::Rolling(Rolling {
                min_healthy_percent: min,
                max_percent: max as u16,
                bake_ms: bake,
                step,
                approve,
            })
        } else if let Some(b) = base {
            b.shape.clone()
        } else {
            return Err(file.error(
                0..0,
                prefix,
                "a strategy needs a shape: `steps`, `linear`, `canary` or `rolling` (or, in a config, `name` of a built-in or `file`)",
            ));
        };

        let setting = |v: &Option<Spanned<String>>,
                       key: &str,
                       from_base: Option<Millis>,
                       default: &str|
         -> Result<Millis, InputError> {
            match v {
                Some(v) => duration(file, v, &join(prefix, key)),
                None => Ok(from_base.unwrap_or_else(|| {
                    humantime::parse_duration(default)
                        .expect("default durations parse")
                        .as_millis() as Millis
                })),
            }
        };
        let keep_alive_ms = setting(
            &self.keep_alive,
            "keep_alive",
            base.map(|b| b.keep_alive_ms),
            DEFAULT_KEEP_ALIVE,
        )?;
        let poll_ms = setting(&self.poll, "poll", base.map(|b| b.poll_ms), DEFAULT_POLL)?;
        if poll_ms < 100 {
            let span = self.poll.as_ref().map_or(0..0, |p| p.span());
            return Err(file.error(
                span,
                &join(prefix, "poll"),
                format!("poll must be at least 100ms, got {poll_ms}ms"),
            ));
        }
        for (field, raw) in self.approvals(prefix) {
            let a = approval(file, raw, &field)?;
            check_approval(file, a, raw, &field, poll_ms)?;
        }
        let green_healthy_timeout_ms = setting(
            &self.green_healthy_timeout,
            "green_healthy_timeout",
            base.map(|b| b.green_healthy_timeout_ms),
            DEFAULT_GREEN_HEALTHY_TIMEOUT,
        )?;
        if green_healthy_timeout_ms == 0 {
            let span = self
                .green_healthy_timeout
                .as_ref()
                .map_or(0..0, |p| p.span());
            return Err(file.error(
                span,
                &join(prefix, "green_healthy_timeout"),
                "green_healthy_timeout must be above 0",
            ));
        }
        let description = self
            .description
            .clone()
            .or_else(|| base.map(|b| b.description.clone()))
            .unwrap_or_else(|| "custom strategy".to_string());
        Ok(Strategy {
            name: name.to_string(),
            description,
            shape,
            keep_alive_ms,
            poll_ms,
            green_healthy_timeout_ms,
        })
    }

    /// Every `approve` this table gives, with its field.
    fn approvals(&self, prefix: &str) -> Vec<(String, &Spanned<toml::Value>)> {
        let mut out = Vec::new();
        if let Some(steps) = &self.steps {
            for (i, s) in steps.get_ref().iter().enumerate() {
                if let Some(a) = &s.approve {
                    out.push((join(prefix, &format!("steps[{i}].approve")), a));
                }
            }
        }
        if let Some(a) = self
            .canary
            .as_ref()
            .and_then(|c| c.get_ref().approve.as_ref())
        {
            out.push((join(prefix, "canary.approve"), a));
        }
        if let Some(a) = self
            .rolling
            .as_ref()
            .and_then(|r| r.get_ref().approve.as_ref())
        {
            out.push((join(prefix, "rolling.approve"), a));
        }
        out
    }

    fn validate_steps(
        &self,
        steps: &Spanned<Vec<RawStep>>,
        file: &SourceFile,
        prefix: &str,
    ) -> Result<Vec<Step>, InputError> {
        let f = join(prefix, "steps");
        if steps.get_ref().is_empty() {
            return Err(file.error(
                steps.span(),
                &f,
                "steps must not be empty: give at least one step, ending with weight = 100",
            ));
        }
        let mut out: Vec<Step> = Vec::with_capacity(steps.get_ref().len());
        for (i, s) in steps.get_ref().iter().enumerate() {
            let field = format!("{f}[{i}].weight");
            let weight = percent(file, &s.weight, &field, 0..101, "weight")?;
            if weight == 0 {
                return Err(file.error(
                    s.weight.span(),
                    &field,
                    "weight must be above 0: a step moves traffic to green",
                ));
            }
            if let Some(prev) = out.last() {
                if weight <= prev.weight {
                    return Err(file.error(
                        s.weight.span(),
                        &field,
                        format!(
                            "weights must increase from step to step, but {weight} follows {}",
                            prev.weight
                        ),
                    ));
                }
            }
            let bake_ms = match &s.bake {
                Some(b) => duration(file, b, &format!("{f}[{i}].bake"))?,
                None => 0,
            };
            let approve = match &s.approve {
                Some(v) => approval(file, v, &format!("{f}[{i}].approve"))?,
                None => None,
            };
            out.push(Step {
                weight,
                bake_ms,
                approve,
            });
        }
        let last = steps.get_ref().last().expect("non-empty");
        if out.last().map(|s| s.weight) != Some(100) {
            return Err(file.error(
                last.weight.span(),
                &format!("{f}[{}].weight", out.len() - 1),
                "the last step must be weight = 100: green takes all traffic before blue is retired",
            ));
        }
        Ok(out)
    }
}

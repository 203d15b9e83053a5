//! `[gates]`: what can stop a deployment, validated into a [`GatesConfig`].
//!
//! A new gate adds its raw shape, its validation and its names here.

use super::fields::non_empty;
use crate::diag::{InputError, SourceFile};
pub use crate::model::InsufficientData;
use crate::model::Millis;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `[gates]`, validated.
#[derive(Debug, Clone, Serialize)]
pub struct GatesConfig {
    /// Alarm names, in config order, without duplicates.
    pub alarms: Vec<String>,
    /// How `INSUFFICIENT_DATA` counts.
    pub insufficient_data: InsufficientData,
    /// Start even when an alarm is already in ALARM.
    pub allow_alarm_at_start: bool,
    /// Live metric gates of the local proxy.
    pub local: Option<LocalGates>,
}

/// `[gates.local]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LocalGates {
    /// Highest 5xx share, percent.
    pub max_5xx_percent: f64,
    /// Highest p99 latency.
    pub max_p99_ms: Millis,
    /// Requests in the window before judging.
    pub min_requests: u32,
    /// Sliding window.
    pub window_ms: Millis,
}

impl LocalGates {
    /// The gate names the local proxy reports.
    pub const NAMES: [&'static str; 2] = ["local-5xx", "local-p99"];
}

impl GatesConfig {
    /// Every gate in words, for `teal plan`, in the order of [`GatesConfig::names`].
    pub fn describe(&self) -> Vec<String> {
        let mut all = self.alarms.clone();
        if let Some(l) = &self.local {
            all.push(format!(
                "local-5xx (> {}% over {})",
                l.max_5xx_percent,
                crate::model::fmt_ms(l.window_ms)
            ));
            all.push(format!("local-p99 (> {}ms)", l.max_p99_ms));
        }
        all
    }

    /// Every gate a deployment must find, by name, in config order: the
    /// alarms, then the local proxy's gates.
    pub fn names(&self) -> Vec<String> {
        let local = self.local.iter().flat_map(|_| LocalGates::NAMES);
        self.alarms
            .iter()
            .cloned()
            .chain(local.map(String::from))
            .collect()
    }
}

/// The most alarms one `DescribeAlarms` call reads; teal reads them all in one call per poll.
pub const MAX_ALARMS: usize = 100;

pub(super) fn validate_gates(file: &SourceFile, g: RawGates) -> Result<GatesConfig, InputError> {
    let mut alarms: Vec<String> = Vec::new();
    for (i, a) in g.alarms.iter().enumerate() {
        let name = non_empty(file, a, &format!("gates.alarms[{i}]"))?;
        if alarms.contains(&name) {
            return Err(file.error(
                a.span(),
                &format!("gates.alarms[{i}]"),
                format!("alarm {name:?} is listed twice"),
            ));
        }
        alarms.push(name);
    }
    if alarms.len() > MAX_ALARMS {
        let span = g.alarms[MAX_ALARMS].span();
        return Err(file.error(
            span,
            "gates.alarms",
            format!("at most {MAX_ALARMS} alarms, got {}", alarms.len()),
        ));
    }
    let insufficient_data = match &g.insufficient_data {
        None => InsufficientData::Ok,
        Some(v) => match v.get_ref().as_str() {
            "ok" => InsufficientData::Ok,
            "alarm" => InsufficientData::Alarm,
            other => {
                return Err(file.error(
                    v.span(),
                    "gates.insufficient_data",
                    format!("insufficient_data must be \"ok\" or \"alarm\", got {other:?}"),
                ))
            }
        },
    };
    let local = match &g.local {
        None => None,
        Some(l) => {
            let max_5xx_percent = match &l.max_5xx_percent {
                None => 5.0,
                Some(v) if (0.0..=100.0).contains(v.get_ref()) => *v.get_ref(),
                Some(v) => {
                    return Err(file.error(
                        v.span(),
                        "gates.local.max_5xx_percent",
                        format!("must be 0..=100, got {}", v.get_ref()),
                    ))
                }
            };
            let dur = |v: &Option<Spanned<String>>, field: &str, default: Millis| match v {
                None => Ok(default),
                Some(v) => crate::strategy::raw::duration(file, v, field),
            };
            let min_requests = match &l.min_requests {
                None => 20,
                Some(n) if (1..=1_000_000).contains(n.get_ref()) => *n.get_ref() as u32,
                Some(n) => {
                    return Err(file.error(
                        n.span(),
                        "gates.local.min_requests",
                        format!("must be 1..=1000000, got {}", n.get_ref()),
                    ))
                }
            };
            Some(LocalGates {
                max_5xx_percent,
                max_p99_ms: dur(&l.max_p99, "gates.local.max_p99", 1_000)?,
                min_requests,
                window_ms: dur(&l.window, "gates.local.window", 10_000)?.max(1),
            })
        }
    };
    Ok(GatesConfig {
        alarms,
        insufficient_data,
        allow_alarm_at_start: g.allow_alarm_at_start,
        local,
    })
}

/// `[gates]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawGates {
    /// CloudWatch alarm names (or sim gate names).
    #[serde(default)]
    pub alarms: Vec<Spanned<String>>,
    /// `ok` (default) or `alarm`: how `INSUFFICIENT_DATA` counts.
    pub insufficient_data: Option<Spanned<String>>,
    /// Start even when an alarm is already in ALARM (default false).
    #[serde(default)]
    pub allow_alarm_at_start: bool,
    /// Live metric gates measured by teal's local proxy.
    pub local: Option<RawLocalGates>,
}

/// `[gates.local]`: measured per slot by the local proxy over a sliding window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalGates {
    /// Highest share of 5xx answers (and failed connections), in percent.
    pub max_5xx_percent: Option<Spanned<f64>>,
    /// Highest p99 latency (`500ms`).
    pub max_p99: Option<Spanned<String>>,
    /// Requests in the window before judging (fewer: INSUFFICIENT_DATA).
    pub min_requests: Option<Spanned<i64>>,
    /// The sliding window (`10s`).
    pub window: Option<Spanned<String>>,
}

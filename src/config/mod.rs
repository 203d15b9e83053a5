//! `teal.toml`: raw serde types ([`raw`]) validated into a [`Config`].
//!
//! Every error names the file, line, column and field and says what would be
//! valid. Nothing here touches the network: `teal plan` relies on that.

mod analysis;
mod fields;
mod fleet;
mod gates;
mod notify;
mod plan;
pub mod raw;
mod router;

pub use analysis::{DEFAULT_ALLOWED_EFFECT, DEFAULT_CONFIDENCE, DEFAULT_MIN_POINTS};
pub use fleet::{FleetConfig, LocalRuns, Slots};
pub use gates::{GatesConfig, LocalGates, MAX_ALARMS};
pub use notify::{Destination, NotifyConfig, Secret, Target, WebhookFormat};
pub use router::{
    Balancer, ListenerRouter, ListenerTarget, RouterConfig, AWS_PAIRS, CLOUDFRONT_MAX_WEIGHT,
};

/// Every `(fleet.kind, router.kind)` pair teal deploys: AWS's, and the
/// simulated and local providers' own.
fn deployable(pair: (&str, &str)) -> bool {
    AWS_PAIRS.contains(&pair) || matches!(pair, ("sim", "sim") | ("local", "local"))
}

use crate::diag::{InputError, SourceFile};
use crate::hooks::{HookCommand, HookPoint};
pub use crate::model::InsufficientData;
use crate::model::Millis;
use crate::strategy::{self, raw::duration, RawStrategy, Shape, Strategy};
use fleet::parse_fleet;
use gates::validate_gates;
use raw::*;
use router::parse_router;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Errors loading a config file.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    #[diagnostic(help("pass --config FILE, set TEAL_CONFIG, or run where ./teal.toml is"))]
    Read {
        /// The path tried.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A bad value, located in the file.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Input(#[from] InputError),
    /// `--strategy` named neither a built-in nor a readable file.
    #[error("unknown strategy {name:?}: not a built-in ({builtins}) and not a readable file")]
    UnknownStrategy {
        /// What was asked for.
        name: String,
        /// The built-ins, comma separated.
        builtins: String,
    },
}

/// A validated config.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// The service's name.
    pub service: String,
    /// The compute.
    pub fleet: FleetConfig,
    /// What splits traffic.
    pub router: RouterConfig,
    /// What can stop a deployment.
    pub gates: GatesConfig,
    /// The steps.
    pub strategy: Strategy,
    /// Lifecycle hooks.
    pub hooks: HooksConfig,
    /// Where the deployment record lives.
    pub ledger: LedgerConfig,
    /// Canary analysis, when `[analysis]` is there.
    pub analysis: Option<crate::analysis::AnalysisSpec>,
    /// Who is told about the deployment's milestones.
    pub notify: NotifyConfig,
    /// Where its sections were written, for [`Config::plan`]'s errors.
    #[serde(skip)]
    pub(crate) spans: plan::Spans,
}

/// `[ledger]`, validated: where the deployment record, and so the lock,
/// lives. ALB routers keep it in a DynamoDB table (conditional writes make
/// the lock a real one); Route 53 routers in a TXT record beside the
/// weighted records unless a table is named; local and sim in their own
/// stores.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LedgerConfig {
    /// The DynamoDB table named in the file, if any.
    pub table: Option<String>,
}

impl LedgerConfig {
    /// The table an ALB router's record goes to when `[ledger]` names none.
    pub const DEFAULT_TABLE: &'static str = "teal-ledger";

    /// The table an AWS router's record goes to: the one named, else
    /// [`LedgerConfig::DEFAULT_TABLE`] for a router whose record has no
    /// other home (ALB); `None` for one that keeps it beside itself when no
    /// table is named (Route 53's TXT record).
    pub fn table_for(&self, router: &RouterConfig) -> Option<String> {
        match &self.table {
            Some(t) => Some(t.clone()),
            None if router.needs_ledger_table() => Some(Self::DEFAULT_TABLE.to_string()),
            None => None,
        }
    }
}

/// `[hooks]`, validated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HooksConfig {
    /// The command of each configured point.
    pub commands: BTreeMap<HookPoint, HookCommand>,
    /// How long one run may take.
    pub timeout_ms: Millis,
}

/// Analysis metrics a Route 53 TXT ledger has room for (its record holds
/// about 4,000 characters, the deployment record's last judgment a line per metric).
pub const MAX_METRICS_IN_TXT: usize = 16;

/// A hook run may take this long unless `[hooks] timeout` says otherwise.
pub const DEFAULT_HOOK_TIMEOUT_MS: Millis = 5 * 60 * 1000;

impl Config {
    /// Refuse what only a command that drives a deployment needs and this
    /// process lacks (a webhook's URL variable not set), located in the file.
    pub fn check_driving(&self) -> Result<(), InputError> {
        self.notify.check(&self.spans.file)
    }

    /// Read and validate a config file. `strategy_override` is `--strategy`:
    /// a built-in name or a strategy file path.
    pub fn load(path: &Path, strategy_override: Option<&str>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file = SourceFile::new(path.display().to_string(), text);
        Config::parse(&file, path, strategy_override)
    }

    /// Validate a config from its text (`path` locates relative strategy files).
    pub fn parse(
        file: &SourceFile,
        path: &Path,
        strategy_override: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(&file.text).map_err(|e| file.toml_error(&e))?;
        let service = validate_service_name(file, &raw.service.name)?;
        let fleet = parse_fleet(file, &raw.fleet)?;
        let (router, test_listener_span) = parse_router(file, &raw.router)?;
        let gates = validate_gates(file, raw.gates.unwrap_or_default())?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        let strategy = match strategy_override {
            Some(s) => resolve_strategy_ref(s, Path::new("."))?,
            None => validate_strategy(file, base_dir, raw.strategy.as_ref())?,
        };
        let pair = (fleet.kind(), router.kind());
        if !deployable(pair) {
            let aws: Vec<String> = AWS_PAIRS
                .iter()
                .map(|(f, r)| format!("{f} behind {r}"))
                .collect();
            return Err(file
                .error(
                    raw.router.span(),
                    "router.kind",
                    format!(
                        "fleet.kind = {:?} cannot be deployed behind router.kind = {:?}; on AWS \
                         teal deploys {}, and \"sim\" and \"local\" go with their own kind",
                        pair.0,
                        pair.1,
                        aws.join(", ")
                    ),
                )
                .into());
        }
        // A rolling update reads no target group: the refresh judges health.
        if let (FleetConfig::Asg { target_groups, .. }, RouterConfig::Route53 { .. }, false) =
            (&fleet, &router, matches!(strategy.shape, Shape::Rolling(_)))
        {
            if target_groups.len() != 2 {
                return Err(file
                    .error(
                        raw.fleet.span(),
                        "fleet.target_groups",
                        "behind Route 53, an asg fleet needs target_groups = [slot A, slot B]: the groups its instances register in, for health",
                    )
                    .into());
            }
        }
        if matches!(strategy.shape, Shape::BlueGreen { .. }) && router.slot_count() < 2 {
            return Err(file
                .error(
                    raw.router.span(),
                    "router",
                    format!(
                        "strategy {:?} shifts traffic between two slots, but the router has only one; \
                         only a rolling strategy is possible (strategy.name = \"rolling\")",
                        strategy.name
                    ),
                )
                .into());
        }
        let ledger = match &raw.ledger {
            Some(l) => validate_ledger(file, l, &router)?,
            None => LedgerConfig::default(),
        };
        let hooks = match &raw.hooks {
            Some(h) => validate_hooks(file, h, &router)?,
            None => HooksConfig {
                commands: BTreeMap::new(),
                timeout_ms: DEFAULT_HOOK_TIMEOUT_MS,
            },
        };
        let analysis = raw
            .analysis
            .as_ref()
            .map(|a| analysis::validate_analysis(file, a.span(), a.get_ref(), &fleet, &router))
            .transpose()?;
        // Route 53's TXT record holds about 4,000 characters, and the record
        // keeps the last judgment's line per metric.
        if let (Some(a), Some(span), None) = (
            &analysis,
            raw.analysis.as_ref().map(|a| a.span()),
            ledger.table_for(&router),
        ) {
            if matches!(router, RouterConfig::Route53 { .. })
                && a.metrics.len() > MAX_METRICS_IN_TXT
            {
                return Err(file
                    .error(
                        span,
                        "analysis.metric",
                        format!(
                            "{} metrics: the deployment record keeps the last judgment of each, and a Route 53 TXT \
                             ledger holds at most {MAX_METRICS_IN_TXT}; name a DynamoDB table in [ledger] table",
                            a.metrics.len()
                        ),
                    )
                    .into());
            }
        }
        let notify = match &raw.notify {
            Some(n) => notify::validate_notify(file, n, &|k| std::env::var(k).ok())?,
            None => NotifyConfig::default(),
        };
        let spans = plan::Spans {
            analysis: raw.analysis.as_ref().map(|a| a.span()),
            file: file.clone(),
            fleet: raw.fleet.span(),
            strategy: match strategy_override {
                None => raw.strategy.as_ref().map(|s| s.span()),
                Some(_) => None,
            },
            test_listener: test_listener_span,
            hooks: raw.hooks.as_ref().map(hook_spans).unwrap_or_default(),
        };
        Ok(Config {
            path: path.to_path_buf(),
            service,
            fleet,
            router,
            gates,
            strategy,
            hooks,
            ledger,
            analysis,
            notify,
            spans,
        })
    }
}

/// `[ledger] table`: a DynamoDB table name (3 to 255 of `A-Z a-z 0-9 _ - .`),
/// for an AWS router only.
fn validate_ledger(
    file: &SourceFile,
    l: &RawLedger,
    router: &RouterConfig,
) -> Result<LedgerConfig, InputError> {
    let Some(t) = &l.table else {
        return Ok(LedgerConfig::default());
    };
    let name = t.get_ref();
    let valid = (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !valid {
        return Err(file.error(
            t.span(),
            "ledger.table",
            format!(
                "a DynamoDB table name is 3 to 255 letters, digits, '_', '-' or '.', got {name:?}"
            ),
        ));
    }
    if !router.is_aws() {
        return Err(file.error(
            t.span(),
            "ledger.table",
            format!(
                "a DynamoDB ledger is for AWS routers; router.kind = {:?} keeps its own record",
                router.kind()
            ),
        ));
    }
    Ok(LedgerConfig {
        table: Some(name.clone()),
    })
}

fn validate_service_name(file: &SourceFile, name: &Spanned<String>) -> Result<String, InputError> {
    let n = name.get_ref();
    let ok = !n.is_empty()
        && n.len() <= 63
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(file.error(
            name.span(),
            "service.name",
            format!("service name must be 1 to 63 letters, digits, '-' or '_', starting with a letter or digit; got {n:?}"),
        ));
    }
    Ok(n.clone())
}

/// Where each hook is written.
fn hook_spans(h: &RawHooks) -> BTreeMap<HookPoint, std::ops::Range<usize>> {
    [
        (HookPoint::AfterTestTraffic, &h.after_test_traffic),
        (HookPoint::BeforeTraffic, &h.before_traffic),
        (HookPoint::AfterStep, &h.after_step),
        (HookPoint::BeforeRetire, &h.before_retire),
    ]
    .into_iter()
    .filter_map(|(p, raw)| raw.as_ref().map(|r| (p, r.span())))
    .collect()
}

fn validate_hooks(
    file: &SourceFile,
    h: &RawHooks,
    router: &RouterConfig,
) -> Result<HooksConfig, InputError> {
    if let Some(v) = &h.after_test_traffic {
        if !router.has_test_traffic() {
            return Err(file.error(
                v.span(),
                "hooks.after_test_traffic",
                "after_test_traffic runs once a test listener points at green: set \
                 router.test_listener_arn (an ALB listener) or, with CloudFront, \
                 router.test_header; or use before_traffic",
            ));
        }
    }
    let mut commands = BTreeMap::new();
    for (point, raw) in [
        (HookPoint::AfterTestTraffic, &h.after_test_traffic),
        (HookPoint::BeforeTraffic, &h.before_traffic),
        (HookPoint::AfterStep, &h.after_step),
        (HookPoint::BeforeRetire, &h.before_retire),
    ] {
        let Some(raw) = raw else { continue };
        let field = format!("hooks.{}", point.config_key());
        let command = match raw.get_ref() {
            RawHookCommand::Shell(s) if !s.trim().is_empty() => HookCommand::Shell(s.clone()),
            RawHookCommand::Argv(v) if v.first().is_some_and(|p| !p.is_empty()) => {
                HookCommand::Argv(v.clone())
            }
            _ => {
                return Err(file.error(
                    raw.span(),
                    &field,
                    "a hook is a command string (run with sh -c) or a non-empty list [program, args...]",
                ))
            }
        };
        commands.insert(point, command);
    }
    let timeout_ms = match &h.timeout {
        None => DEFAULT_HOOK_TIMEOUT_MS,
        Some(v) => match duration(file, v, "hooks.timeout")? {
            0 => {
                return Err(file.error(
                    v.span(),
                    "hooks.timeout",
                    "a hook's timeout must be longer than 0s",
                ))
            }
            ms => ms,
        },
    };
    Ok(HooksConfig {
        commands,
        timeout_ms,
    })
}

fn validate_strategy(
    file: &SourceFile,
    base_dir: &Path,
    raw: Option<&Spanned<RawStrategy>>,
) -> Result<Strategy, ConfigError> {
    let Some(raw) = raw else {
        return Ok(strategy::builtin("canary-10-5m").expect("built-in"));
    };
    let r = raw.get_ref();
    let base = match (&r.name, &r.file) {
        (Some(_), Some(f)) => {
            return Err(file
                .error(
                    f.span(),
                    "strategy.file",
                    "give strategy.name or strategy.file, not both",
                )
                .into())
        }
        (Some(n), None) => Some(strategy::builtin(n.get_ref()).ok_or_else(|| {
            file.error(
                n.span(),
                "strategy.name",
                format!(
                    "unknown built-in strategy {:?}; built-ins are: {}",
                    n.get_ref(),
                    builtin_list()
                ),
            )
        })?),
        (None, Some(f)) => Some(
            load_strategy_file(&base_dir.join(f.get_ref())).map_err(|e| match e {
                ConfigError::Read { path, source } => file
                    .error(
                        f.span(),
                        "strategy.file",
                        format!("cannot read strategy file {}: {source}", path.display()),
                    )
                    .into(),
                other => other,
            })?,
        ),
        (None, None) => None,
    };
    if base.is_some() && r.has_shape() {
        let span = r
            .name
            .as_ref()
            .or(r.file.as_ref())
            .map_or(raw.span(), |s| s.span());
        return Err(file
            .error(span, "strategy", "name a built-in or a file, or give steps inline, but not both (overriding keep_alive, poll and green_healthy_timeout is fine)")
            .into());
    }
    if base.is_none() && !r.has_shape() {
        return Err(file
            .error(
                raw.span(),
                "strategy",
                format!(
                    "[strategy] needs `name` (one of: {}), `file`, or steps inline",
                    builtin_list()
                ),
            )
            .into());
    }
    let name = base
        .as_ref()
        .map_or("inline".to_string(), |b| b.name.clone());
    Ok(r.validate(&name, file, "strategy", base.as_ref())?)
}

/// Resolve `--strategy`: a built-in name, or a path to a strategy file.
pub fn resolve_strategy_ref(s: &str, base_dir: &Path) -> Result<Strategy, ConfigError> {
    if let Some(b) = strategy::builtin(s) {
        return Ok(b);
    }
    let path = base_dir.join(s);
    if path.is_file() {
        return load_strategy_file(&path);
    }
    Err(ConfigError::UnknownStrategy {
        name: s.to_string(),
        builtins: builtin_list(),
    })
}

fn load_strategy_file(path: &Path) -> Result<Strategy, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = SourceFile::new(path.display().to_string(), text);
    Ok(Strategy::parse(&path.display().to_string(), &file)?)
}

fn builtin_list() -> String {
    strategy::builtin_names().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests;

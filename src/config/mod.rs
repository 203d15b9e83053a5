//! `teal.toml`: raw serde types ([`raw`]) validated into a [`Config`].
//!
//! Every error names the file, line, column and field and says what would be
//! valid. Nothing here touches the network: `teal plan` relies on that.

mod plan;
pub mod raw;

use crate::diag::{InputError, SourceFile};
use crate::hooks::{HookCommand, HookPoint};
pub use crate::model::InsufficientData;
use crate::model::Millis;
use crate::strategy::{self, raw::duration, RawStrategy, Shape, Strategy};
use raw::*;
use serde::de::DeserializeOwned;
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
    /// [`LedgerConfig::DEFAULT_TABLE`] for an ALB router; `None`
    /// for a Route 53 router with no table named (its TXT record).
    pub fn table_for(&self, router: &RouterConfig) -> Option<String> {
        match (&self.table, router) {
            (Some(t), _) => Some(t.clone()),
            (None, RouterConfig::Alb { .. }) => {
                Some(Self::DEFAULT_TABLE.to_string())
            }
            (None, _) => None,
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

/// A hook run may take this long unless `[hooks] timeout` says otherwise.
pub const DEFAULT_HOOK_TIMEOUT_MS: Millis = 5 * 60 * 1000;

/// `[fleet]`, validated.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FleetConfig {
    /// In-memory simulated fleet (no AWS, virtual clock).
    Sim {
        /// Instances per fleet.
        instances: u32,
        /// Time a new fleet takes to become healthy.
        healthy_after_ms: Millis,
        /// Blue's revision before the first deployment.
        live_revision: String,
    },
    /// An ECS service per slot.
    Ecs {
        /// Cluster name or ARN.
        cluster: String,
        /// Blue's service.
        service: String,
        /// The container patched with `--image` and attached to the target group.
        container: String,
        /// Its port.
        container_port: u16,
    },
    /// An Auto Scaling group per slot.
    Asg {
        /// Blue's group.
        group: String,
        /// Target groups of the slots (A, B) when the router has none of its own.
        target_groups: Vec<String>,
    },
    /// Local processes.
    Local {
        /// Command and arguments.
        command: Vec<String>,
        /// Instances per revision.
        instances: u32,
        /// Health path.
        health_path: String,
    },
}

impl FleetConfig {
    /// Its `kind` as written in `teal.toml`.
    pub fn kind(&self) -> &'static str {
        match self {
            FleetConfig::Sim { .. } => "sim",
            FleetConfig::Ecs { .. } => "ecs",
            FleetConfig::Asg { .. } => "asg",
            FleetConfig::Local { .. } => "local",
        }
    }
}

/// `[router]`, validated.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RouterConfig {
    /// In-memory simulated router.
    Sim,
    /// An ALB listener or listener rule with a weighted forward action.
    Alb {
        /// Listener or rule.
        target: AlbTarget,
        /// Target group ARNs, slot A then slot B (one for rolling only).
        target_groups: Vec<String>,
        /// A test listener pointed 100% at green before production traffic moves.
        test_listener: Option<String>,
    },
    /// Two weighted Route 53 records.
    Route53 {
        /// Hosted zone id.
        hosted_zone_id: String,
        /// Record name.
        record_name: String,
        /// Record type.
        record_type: String,
        /// Set identifiers, slot A then slot B.
        set_identifiers: Vec<String>,
    },
    /// teal's own weighted proxy.
    Local {
        /// Listen address.
        listen: String,
        /// `teal local serve`'s admin API (loopback).
        admin: String,
    },
}

/// Which part of an ALB splits traffic.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlbTarget {
    /// The listener's default action.
    Listener(String),
    /// One listener rule.
    Rule(String),
}

impl RouterConfig {
    /// Its `kind` as written in `teal.toml`.
    pub fn kind(&self) -> &'static str {
        match self {
            RouterConfig::Sim => "sim",
            RouterConfig::Alb { .. } => "alb",
            RouterConfig::Route53 { .. } => "route53",
            RouterConfig::Local { .. } => "local",
        }
    }

    /// How many slots (target groups / records) the router has.
    pub fn slot_count(&self) -> usize {
        match self {
            RouterConfig::Alb { target_groups, .. } => target_groups.len(),
            RouterConfig::Route53 {
                set_identifiers, ..
            } => set_identifiers.len(),
            RouterConfig::Sim | RouterConfig::Local { .. } => 2,
        }
    }
}

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

impl Config {
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
        let spans = plan::Spans {
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
    if !matches!(
        router,
        RouterConfig::Alb { .. } | RouterConfig::Route53 { .. }
    ) {
        return Err(file.error(
            t.span(),
            "ledger.table",
            "a DynamoDB ledger is for AWS routers (alb, route53); this router keeps its own record",
        ));
    }
    Ok(LedgerConfig {
        table: Some(name.clone()),
    })
}

fn section_kind(
    file: &SourceFile,
    value: &Spanned<toml::Value>,
    section: &str,
    kinds: &[&str],
) -> Result<String, InputError> {
    if !value.get_ref().is_table() {
        return Err(file.error(
            value.span(),
            section,
            format!("[{section}] must be a table"),
        ));
    }
    let k: FleetSection<RawKind> = match section {
        "fleet" => toml::from_str(&file.text).map_err(|e| file.toml_error(&e))?,
        _ => {
            let r: RouterSection<RawKind> =
                toml::from_str(&file.text).map_err(|e| file.toml_error(&e))?;
            FleetSection { fleet: r.router }
        }
    };
    let expected = kinds
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let Some(kind) = k.fleet.kind else {
        return Err(file.error(
            value.span(),
            &format!("{section}.kind"),
            format!("missing `kind`: one of {expected}"),
        ));
    };
    if !kinds.contains(&kind.get_ref().as_str()) {
        return Err(file.error(
            kind.span(),
            &format!("{section}.kind"),
            format!(
                "unknown kind {:?}: expected one of {expected}",
                kind.get_ref()
            ),
        ));
    }
    Ok(kind.into_inner())
}

fn section<T: DeserializeOwned>(file: &SourceFile) -> Result<T, InputError> {
    toml::from_str(&file.text).map_err(|e| file.toml_error(&e))
}

fn parse_fleet(file: &SourceFile, value: &Spanned<toml::Value>) -> Result<FleetConfig, InputError> {
    let kind = section_kind(file, value, "fleet", &["sim", "ecs", "asg", "local"])?;
    Ok(match kind.as_str() {
        "sim" => {
            let f = section::<FleetSection<RawSimFleet>>(file)?.fleet;
            FleetConfig::Sim {
                instances: count(file, f.instances.as_ref(), "fleet.instances", 2)?,
                healthy_after_ms: match &f.healthy_after {
                    Some(d) => duration(file, d, "fleet.healthy_after")?,
                    None => 15_000,
                },
                live_revision: match &f.live_revision {
                    Some(r) => non_empty(file, r, "fleet.live_revision")?,
                    None => "v1".to_string(),
                },
            }
        }
        "ecs" => {
            let f = section::<FleetSection<RawEcsFleet>>(file)?.fleet;
            let port = *f.container_port.get_ref();
            if !(1..=65535).contains(&port) {
                return Err(file.error(
                    f.container_port.span(),
                    "fleet.container_port",
                    format!("port must be 1..=65535, got {port}"),
                ));
            }
            FleetConfig::Ecs {
                cluster: non_empty(file, &f.cluster, "fleet.cluster")?,
                service: non_empty(file, &f.service, "fleet.service")?,
                container: non_empty(file, &f.container, "fleet.container")?,
                container_port: port as u16,
            }
        }
        "asg" => {
            let f = section::<FleetSection<RawAsgFleet>>(file)?.fleet;
            let target_groups = match &f.target_groups {
                Some(tgs) => {
                    let out = pair(file, tgs, "fleet.target_groups", "target group ARNs")?;
                    for (i, tg) in tgs.get_ref().iter().enumerate() {
                        arn(
                            file,
                            tg,
                            &format!("fleet.target_groups[{i}]"),
                            "elasticloadbalancing",
                            ":targetgroup/",
                        )?;
                    }
                    out
                }
                None => vec![],
            };
            FleetConfig::Asg {
                group: non_empty(file, &f.group, "fleet.group")?,
                target_groups,
            }
        }
        _ => {
            let f = section::<FleetSection<RawLocalFleet>>(file)?.fleet;
            if f.command.get_ref().is_empty() {
                return Err(file.error(
                    f.command.span(),
                    "fleet.command",
                    "command must not be empty: give the program and its arguments",
                ));
            }
            let health_path = match &f.health_path {
                Some(p) if !p.get_ref().starts_with('/') => {
                    return Err(file.error(
                        p.span(),
                        "fleet.health_path",
                        format!("health_path must start with '/', got {:?}", p.get_ref()),
                    ))
                }
                Some(p) => p.get_ref().clone(),
                None => "/healthz".to_string(),
            };
            FleetConfig::Local {
                command: f.command.into_inner(),
                instances: count(file, f.instances.as_ref(), "fleet.instances", 2)?,
                health_path,
            }
        }
    })
}

fn parse_router(
    file: &SourceFile,
    value: &Spanned<toml::Value>,
) -> Result<(RouterConfig, Option<std::ops::Range<usize>>), InputError> {
    let kind = section_kind(file, value, "router", &["sim", "alb", "route53", "local"])?;
    let mut test_listener_span = None;
    let router = match kind.as_str() {
        "sim" => {
            section::<RouterSection<RawSimRouter>>(file)?;
            RouterConfig::Sim
        }
        "alb" => {
            let r = section::<RouterSection<RawAlbRouter>>(file)?.router;
            let target =
                match (&r.listener_arn, &r.rule_arn) {
                    (Some(l), None) => AlbTarget::Listener(arn(
                        file,
                        l,
                        "router.listener_arn",
                        "elasticloadbalancing",
                        ":listener/",
                    )?),
                    (None, Some(rule)) => AlbTarget::Rule(arn(
                        file,
                        rule,
                        "router.rule_arn",
                        "elasticloadbalancing",
                        ":listener-rule/",
                    )?),
                    (Some(_), Some(rule)) => {
                        return Err(file.error(
                            rule.span(),
                            "router.rule_arn",
                            "give listener_arn or rule_arn, not both",
                        ))
                    }
                    (None, None) => return Err(file.error(
                        value.span(),
                        "router",
                        "an alb router needs listener_arn (default action) or rule_arn (one rule)",
                    )),
                };
            let tgs = pair(
                file,
                &r.target_groups,
                "router.target_groups",
                "target group ARNs",
            )?;
            for (i, tg) in r.target_groups.get_ref().iter().enumerate() {
                arn(
                    file,
                    tg,
                    &format!("router.target_groups[{i}]"),
                    "elasticloadbalancing",
                    ":targetgroup/",
                )?;
            }
            test_listener_span = r.test_listener_arn.as_ref().map(|t| t.span());
            let test_listener = match &r.test_listener_arn {
                Some(t) => Some(arn(
                    file,
                    t,
                    "router.test_listener_arn",
                    "elasticloadbalancing",
                    ":listener/",
                )?),
                None => None,
            };
            if let (Some(t), AlbTarget::Listener(l)) = (&test_listener, &target) {
                if t == l {
                    return Err(file.error(
                        r.test_listener_arn.as_ref().expect("set").span(),
                        "router.test_listener_arn",
                        "the test listener must be another listener than the production one",
                    ));
                }
            }
            RouterConfig::Alb {
                target,
                target_groups: tgs,
                test_listener,
            }
        }
        "route53" => {
            let r = section::<RouterSection<RawRoute53Router>>(file)?.router;
            let rtype = r.record_type.get_ref().to_ascii_uppercase();
            if !["A", "AAAA", "CNAME"].contains(&rtype.as_str()) {
                return Err(file.error(
                    r.record_type.span(),
                    "router.record_type",
                    format!(
                        "record_type must be \"A\", \"AAAA\" or \"CNAME\", got {:?}",
                        r.record_type.get_ref()
                    ),
                ));
            }
            let ids = pair(
                file,
                &r.set_identifiers,
                "router.set_identifiers",
                "set identifiers",
            )?;
            if ids.len() != 2 {
                // The TXT ledger and the weights live beside two records,
                // whatever the strategy.
                return Err(file.error(
                    r.set_identifiers.span(),
                    "router.set_identifiers",
                    "a Route 53 router needs two weighted records (slot A, slot B), \
                     even for a rolling update",
                ));
            }
            RouterConfig::Route53 {
                hosted_zone_id: non_empty(file, &r.hosted_zone_id, "router.hosted_zone_id")?,
                record_name: non_empty(file, &r.record_name, "router.record_name")?,
                record_type: rtype,
                set_identifiers: ids,
            }
        }
        _ => {
            let r = section::<RouterSection<RawLocalRouter>>(file)?.router;
            if r.listen.get_ref().parse::<std::net::SocketAddr>().is_err() {
                return Err(file.error(
                    r.listen.span(),
                    "router.listen",
                    format!(
                        "listen must be an address like 127.0.0.1:8080, got {:?}",
                        r.listen.get_ref()
                    ),
                ));
            }
            let listen: std::net::SocketAddr = r.listen.get_ref().parse().expect("checked above");
            let admin = match &r.admin {
                None => std::net::SocketAddr::from(([127, 0, 0, 1], listen.port().wrapping_add(1)))
                    .to_string(),
                Some(a) => match a.get_ref().parse::<std::net::SocketAddr>() {
                    Ok(addr) if addr.ip().is_loopback() => addr.to_string(),
                    _ => {
                        return Err(file.error(
                            a.span(),
                            "router.admin",
                            format!(
                                "admin must be a loopback address like 127.0.0.1:8081, got {:?}",
                                a.get_ref()
                            ),
                        ))
                    }
                },
            };
            RouterConfig::Local {
                listen: r.listen.into_inner(),
                admin,
            }
        }
    };
    Ok((router, test_listener_span))
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

fn validate_gates(file: &SourceFile, g: RawGates) -> Result<GatesConfig, InputError> {
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
        if !matches!(
            router,
            RouterConfig::Alb {
                test_listener: Some(_),
                ..
            }
        ) {
            return Err(file.error(
                v.span(),
                "hooks.after_test_traffic",
                "after_test_traffic runs once a test listener points at green: set \
                 router.test_listener_arn (an ALB listener), or use before_traffic",
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

fn non_empty(file: &SourceFile, v: &Spanned<String>, field: &str) -> Result<String, InputError> {
    if v.get_ref().trim().is_empty() {
        return Err(file.error(v.span(), field, "must not be empty"));
    }
    Ok(v.get_ref().clone())
}

fn count(
    file: &SourceFile,
    v: Option<&Spanned<i64>>,
    field: &str,
    default: u32,
) -> Result<u32, InputError> {
    match v {
        None => Ok(default),
        Some(n) if (1..=1000).contains(n.get_ref()) => Ok(*n.get_ref() as u32),
        Some(n) => Err(file.error(
            n.span(),
            field,
            format!("must be 1..=1000, got {}", n.get_ref()),
        )),
    }
}

fn pair(
    file: &SourceFile,
    v: &Spanned<Vec<Spanned<String>>>,
    field: &str,
    what: &str,
) -> Result<Vec<String>, InputError> {
    let n = v.get_ref().len();
    if !(1..=2).contains(&n) {
        return Err(file.error(
            v.span(),
            field,
            format!("give two {what} (slot A, slot B), or one for a rolling-only service; got {n}"),
        ));
    }
    let out: Vec<String> = v
        .get_ref()
        .iter()
        .enumerate()
        .map(|(i, s)| non_empty(file, s, &format!("{field}[{i}]")))
        .collect::<Result<_, _>>()?;
    if n == 2 && out[0] == out[1] {
        return Err(file.error(
            v.get_ref()[1].span(),
            &format!("{field}[1]"),
            format!("the two slots must differ, both are {:?}", out[0]),
        ));
    }
    Ok(out)
}

fn arn(
    file: &SourceFile,
    v: &Spanned<String>,
    field: &str,
    service: &str,
    resource: &str,
) -> Result<String, InputError> {
    let s = v.get_ref();
    let ok = s.starts_with("arn:") && s.split(':').nth(2) == Some(service) && s.contains(resource);
    if !ok {
        return Err(file.error(
            v.span(),
            field,
            format!(
                "expected an ARN like arn:aws:{service}:REGION:ACCOUNT{resource}..., got {s:?}"
            ),
        ));
    }
    Ok(s.clone())
}

#[cfg(test)]
mod tests;

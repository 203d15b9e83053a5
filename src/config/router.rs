//! `[router]`: what splits traffic, read by its `kind` into a [`RouterConfig`].
//!
//! A new router adds its raw shape, its validation and its line in `teal plan` here.

use super::fields::{arn, non_empty, pair, section, section_kind, RouterSection};
use crate::diag::{InputError, SourceFile};
use serde::{Deserialize, Serialize};
use toml::Spanned;

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

impl AlbTarget {
    /// The listener's or the rule's ARN.
    pub fn arn(&self) -> &str {
        match self {
            AlbTarget::Listener(a) | AlbTarget::Rule(a) => a,
        }
    }
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

    /// The test listener, for a router that has one.
    pub fn test_listener(&self) -> Option<&str> {
        match self {
            RouterConfig::Alb {
                test_listener: Some(t),
                ..
            } => Some(t),
            _ => None,
        }
    }

    /// Whether AWS runs it (so `[ledger] table` applies).
    pub fn is_aws(&self) -> bool {
        matches!(
            self,
            RouterConfig::Alb { .. } | RouterConfig::Route53 { .. }
        )
    }

    /// Whether its record needs the DynamoDB table when `[ledger]` names
    /// none: it has no conditional write of its own to keep it beside it.
    pub fn needs_ledger_table(&self) -> bool {
        matches!(self, RouterConfig::Alb { .. })
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

pub(super) fn parse_router(
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

impl RouterConfig {
    /// One line for `teal plan`.
    pub fn describe(&self) -> String {
        match self {
            RouterConfig::Sim => "simulated router".to_string(),
            RouterConfig::Alb {
                target,
                target_groups,
                test_listener,
            } => {
                let what = match target {
                    AlbTarget::Listener(arn) => format!("ALB listener {arn} (default action)"),
                    AlbTarget::Rule(arn) => format!("ALB listener rule {arn}"),
                };
                let slots: Vec<String> = target_groups
                    .iter()
                    .zip(["a", "b"])
                    .map(|(tg, s)| format!("{s} = {tg}"))
                    .collect();
                let test = test_listener.as_ref().map_or(String::new(), |t| {
                    format!("; test listener {t} (100% green before production traffic)")
                });
                format!("{what}; slots {}{test}", slots.join(", "))
            }
            RouterConfig::Route53 {
                hosted_zone_id,
                record_name,
                record_type,
                set_identifiers,
            } => format!(
                "Route 53 {record_type} {record_name} in {hosted_zone_id}; slots a = {:?}, b = {:?}",
                set_identifiers.first().map(String::as_str).unwrap_or(""),
                set_identifiers.get(1).map(String::as_str).unwrap_or("")
            ),
            RouterConfig::Local { listen, .. } => format!("teal's proxy on {listen}"),
        }
    }
}

/// `[router] kind = "sim"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSimRouter {
    /// Always `sim`.
    pub kind: Spanned<String>,
}

/// `[router] kind = "alb"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlbRouter {
    /// Always `alb`.
    pub kind: Spanned<String>,
    /// The listener whose default action splits traffic.
    pub listener_arn: Option<Spanned<String>>,
    /// Or one listener rule whose forward action splits traffic.
    pub rule_arn: Option<Spanned<String>>,
    /// The two target groups: slot A, slot B.
    pub target_groups: Spanned<Vec<Spanned<String>>>,
    /// A second listener pointed 100% at green before production traffic
    /// moves (for `after_test_traffic` hooks).
    pub test_listener_arn: Option<Spanned<String>>,
}

/// `[router] kind = "route53"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute53Router {
    /// Always `route53`.
    pub kind: Spanned<String>,
    /// The hosted zone id (`Z...`).
    pub hosted_zone_id: Spanned<String>,
    /// The record name (`api.example.com`).
    pub record_name: Spanned<String>,
    /// `A`, `AAAA` or `CNAME`.
    pub record_type: Spanned<String>,
    /// The two weighted records' set identifiers: slot A, slot B.
    pub set_identifiers: Spanned<Vec<Spanned<String>>>,
}

/// `[router] kind = "local"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalRouter {
    /// Always `local`.
    pub kind: Spanned<String>,
    /// Where teal's proxy listens (`127.0.0.1:8080`).
    pub listen: Spanned<String>,
    /// Where `teal local serve` answers teal's own calls (loopback only;
    /// default: the proxy's port + 1 on 127.0.0.1).
    pub admin: Option<Spanned<String>>,
}

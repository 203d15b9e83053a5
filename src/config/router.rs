//! `[router]`: what splits traffic, read by its `kind` into a [`RouterConfig`].
//!
//! A new router adds its raw shape, its validation, its line in `teal plan`
//! and its pairs in [`AWS_PAIRS`] here.

use super::fields::{arn, non_empty, pair, section, section_kind, RouterSection};
use crate::diag::{InputError, SourceFile};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `(fleet.kind, router.kind)` pairs teal deploys on AWS: a new router adds
/// its own (`aws::wiring` builds each; the config is refused as read with
/// any other, bar the simulated and local providers' own).
pub const AWS_PAIRS: &[(&str, &str)] = &[
    ("ecs", "alb"),
    ("ecs", "nlb"),
    ("asg", "alb"),
    ("asg", "nlb"),
    ("asg", "route53"),
    ("s3", "cloudfront"),
];

/// `[router]`, validated.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RouterConfig {
    /// In-memory simulated router.
    Sim,
    /// An ALB listener or listener rule with a weighted forward action.
    Alb {
        /// Listener or rule.
        target: ListenerTarget,
        /// Target group ARNs, slot A then slot B (one for rolling only).
        target_groups: Vec<String>,
        /// A test listener pointed 100% at green before production traffic moves.
        test_listener: Option<String>,
    },
    /// A Network Load Balancer's TCP, TLS, UDP or TCP_UDP listener with a
    /// weighted forward default action (NLBs have no listener rules).
    Nlb {
        /// The listener's ARN (`listener/net/...`).
        listener: String,
        /// Target group ARNs, slot A then slot B (one for rolling only).
        target_groups: Vec<String>,
        /// A second listener of the same kind pointed 100% at green first.
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
    /// A CloudFront distribution and its staging copy, joined by a
    /// continuous deployment policy (green's share at most
    /// [`CLOUDFRONT_MAX_WEIGHT`] percent until the staging config is promoted).
    Cloudfront {
        /// The primary distribution's id (it serves blue's prefix).
        distribution_id: String,
        /// Keep a viewer on the distribution that first answered it
        /// (`SessionStickinessConfig`): a page and its assets from one build.
        sticky: bool,
        /// A request header (`aws-cf-cd-...`) whose value `green` sends a
        /// request to green before any production share (`SingleHeader`),
        /// the way an ALB router's test listener does.
        test_header: Option<String>,
    },
    /// teal's own weighted proxy.
    Local {
        /// Listen address.
        listen: String,
        /// `teal local serve`'s admin API (loopback).
        admin: String,
    },
}

/// Which part of a load balancer splits traffic: a listener (ALB or NLB) or
/// one ALB listener rule.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerTarget {
    /// The listener's default action.
    Listener(String),
    /// One listener rule.
    Rule(String),
}

impl ListenerTarget {
    /// The listener's or the rule's ARN.
    pub fn arn(&self) -> &str {
        match self {
            ListenerTarget::Listener(a) | ListenerTarget::Rule(a) => a,
        }
    }
}

/// Which kind of Elastic Load Balancer a listener router belongs to: the
/// one thing the ALB and NLB routers do differently is what they check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Balancer {
    /// Application Load Balancer (`listener/app/...`): HTTP/HTTPS, rules.
    Application,
    /// Network Load Balancer (`listener/net/...`): TCP/TLS/UDP, no rules.
    Network,
}

/// What every ELBv2 router (ALB or NLB) is made of, read from the config.
#[derive(Debug, Clone)]
pub struct ListenerRouter<'a> {
    /// Application or network.
    pub balancer: Balancer,
    /// The listener, or (ALB only) the rule, whose forward splits traffic.
    pub target: ListenerTarget,
    /// Target group ARNs, slot A then slot B.
    pub target_groups: &'a [String],
    /// The test listener, if any.
    pub test_listener: Option<&'a str>,
}

impl ListenerRouter<'_> {
    /// One line for `teal plan`.
    fn describe(&self) -> String {
        let what = match (&self.target, self.balancer) {
            (ListenerTarget::Listener(arn), Balancer::Application) => {
                format!("ALB listener {arn} (default action)")
            }
            (ListenerTarget::Listener(arn), Balancer::Network) => {
                format!("NLB listener {arn} (default action; weights split new connections)")
            }
            (ListenerTarget::Rule(arn), _) => format!("ALB listener rule {arn}"),
        };
        let slots: Vec<String> = self
            .target_groups
            .iter()
            .zip(["a", "b"])
            .map(|(tg, s)| format!("{s} = {tg}"))
            .collect();
        let test = self.test_listener.map_or(String::new(), |t| {
            format!("; test listener {t} (100% green before production traffic)")
        });
        format!("{what}; slots {}{test}", slots.join(", "))
    }
}

impl RouterConfig {
    /// The ELBv2 listener (or rule) router, ALB or NLB: everything wired the
    /// same way for both reads it through this.
    pub fn listener(&self) -> Option<ListenerRouter<'_>> {
        match self {
            RouterConfig::Alb {
                target,
                target_groups,
                test_listener,
            } => Some(ListenerRouter {
                balancer: Balancer::Application,
                target: target.clone(),
                target_groups,
                test_listener: test_listener.as_deref(),
            }),
            RouterConfig::Nlb {
                listener,
                target_groups,
                test_listener,
            } => Some(ListenerRouter {
                balancer: Balancer::Network,
                target: ListenerTarget::Listener(listener.clone()),
                target_groups,
                test_listener: test_listener.as_deref(),
            }),
            _ => None,
        }
    }

    /// Its `kind` as written in `teal.toml`.
    pub fn kind(&self) -> &'static str {
        match self {
            RouterConfig::Sim => "sim",
            RouterConfig::Alb { .. } => "alb",
            RouterConfig::Nlb { .. } => "nlb",
            RouterConfig::Route53 { .. } => "route53",
            RouterConfig::Cloudfront { .. } => "cloudfront",
            RouterConfig::Local { .. } => "local",
        }
    }

    /// The test listener, for a router that has one.
    pub fn test_listener(&self) -> Option<&str> {
        self.listener().and_then(|l| l.test_listener)
    }

    /// Whether green can be sent test traffic alone before any production
    /// share: a test listener, or CloudFront's test header.
    pub fn has_test_traffic(&self) -> bool {
        self.test_listener().is_some()
            || matches!(
                self,
                RouterConfig::Cloudfront {
                    test_header: Some(_),
                    ..
                }
            )
    }

    /// Whether AWS runs it (so `[ledger] table` applies).
    pub fn is_aws(&self) -> bool {
        self.listener().is_some()
            || matches!(
                self,
                RouterConfig::Route53 { .. } | RouterConfig::Cloudfront { .. }
            )
    }

    /// Whether its record needs the DynamoDB table when `[ledger]` names
    /// none: it has no conditional write of its own to keep it beside it.
    pub fn needs_ledger_table(&self) -> bool {
        self.listener().is_some() || matches!(self, RouterConfig::Cloudfront { .. })
    }

    /// The largest share green may have short of all traffic, for a router
    /// that caps it (CloudFront continuous deployment: 15%).
    pub fn max_partial_weight(&self) -> Option<u8> {
        match self {
            RouterConfig::Cloudfront { .. } => Some(CLOUDFRONT_MAX_WEIGHT),
            _ => None,
        }
    }

    /// How many slots (target groups / records) the router has.
    pub fn slot_count(&self) -> usize {
        match self {
            RouterConfig::Alb { target_groups, .. } | RouterConfig::Nlb { target_groups, .. } => {
                target_groups.len()
            }
            RouterConfig::Route53 {
                set_identifiers, ..
            } => set_identifiers.len(),
            RouterConfig::Sim | RouterConfig::Local { .. } | RouterConfig::Cloudfront { .. } => 2,
        }
    }
}

pub(super) fn parse_router(
    file: &SourceFile,
    value: &Spanned<toml::Value>,
) -> Result<(RouterConfig, Option<std::ops::Range<usize>>), InputError> {
    let kind = section_kind(
        file,
        value,
        "router",
        &["sim", "alb", "nlb", "route53", "cloudfront", "local"],
    )?;
    let mut test_listener_span = None;
    let router = match kind.as_str() {
        "sim" => {
            section::<RouterSection<RawSimRouter>>(file)?;
            RouterConfig::Sim
        }
        "alb" | "nlb" => {
            let balancer = if kind == "nlb" {
                Balancer::Network
            } else {
                Balancer::Application
            };
            let r = section::<RouterSection<RawListenerRouter>>(file)?.router;
            test_listener_span = r.test_listener_arn.as_ref().map(|t| t.span());
            listener_router(file, value, balancer, &r)?
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
        "cloudfront" => {
            let r = section::<RouterSection<RawCloudFrontRouter>>(file)?.router;
            let id = non_empty(file, &r.distribution_id, "router.distribution_id")?;
            // CloudFront's ids are 13-14 upper-case letters and digits (E2QWRUHAPOMQZL).
            if !id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                return Err(file.error(
                    r.distribution_id.span(),
                    "router.distribution_id",
                    format!(
                        "distribution_id must be a distribution's id like \"E2QWRUHAPOMQZL\" \
                         (not its domain name or ARN), got {id:?}"
                    ),
                ));
            }
            let test_header = match &r.test_header {
                // "The header name must begin with aws-cf-cd-" (API
                // reference, ContinuousDeploymentSingleHeaderConfig).
                Some(h)
                    if !h.get_ref().starts_with(CLOUDFRONT_TEST_HEADER_PREFIX)
                        || !h.get_ref()[CLOUDFRONT_TEST_HEADER_PREFIX.len()..]
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-')
                        || h.get_ref().len() == CLOUDFRONT_TEST_HEADER_PREFIX.len() =>
                {
                    return Err(file.error(
                        h.span(),
                        "router.test_header",
                        format!(
                            "test_header must be a header name starting with \
                             {CLOUDFRONT_TEST_HEADER_PREFIX:?} (CloudFront's rule), like \
                             \"aws-cf-cd-teal\", got {:?}",
                            h.get_ref()
                        ),
                    ))
                }
                Some(h) => Some(h.get_ref().to_ascii_lowercase()),
                None => None,
            };
            RouterConfig::Cloudfront {
                distribution_id: id,
                sticky: r.sticky.as_ref().is_some_and(|s| *s.get_ref()),
                test_header,
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

/// `kind = "alb"` or `"nlb"`. Whether the listener is of that kind of load
/// balancer is checked by the router's preflight, from what AWS says of it
/// (its protocol), not from the ARN's `app/` or `net/`.
fn listener_router(
    file: &SourceFile,
    value: &Spanned<toml::Value>,
    balancer: Balancer,
    r: &RawListenerRouter,
) -> Result<RouterConfig, InputError> {
    let listener_arn = |v: &Spanned<String>, field: &str| {
        arn(file, v, field, "elasticloadbalancing", ":listener/")
    };
    let target =
        match (&r.listener_arn, &r.rule_arn) {
            (_, Some(rule)) if balancer == Balancer::Network => {
                return Err(file.error(
                    rule.span(),
                    "router.rule_arn",
                    "a Network Load Balancer has no listener rules: give listener_arn",
                ))
            }
            (Some(l), None) => ListenerTarget::Listener(listener_arn(l, "router.listener_arn")?),
            (None, Some(rule)) => ListenerTarget::Rule(arn(
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
                match balancer {
                    Balancer::Application => {
                        "an alb router needs listener_arn (default action) or rule_arn (one rule)"
                    }
                    Balancer::Network => "an nlb router needs listener_arn",
                },
            )),
        };
    let target_groups = pair(
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
    let test_listener = match &r.test_listener_arn {
        Some(t) => Some(listener_arn(t, "router.test_listener_arn")?),
        None => None,
    };
    if let (Some(t), ListenerTarget::Listener(l)) = (&test_listener, &target) {
        if t == l {
            return Err(file.error(
                r.test_listener_arn.as_ref().expect("set").span(),
                "router.test_listener_arn",
                "the test listener must be another listener than the production one",
            ));
        }
    }
    Ok(match balancer {
        Balancer::Application => RouterConfig::Alb {
            target,
            target_groups,
            test_listener,
        },
        Balancer::Network => RouterConfig::Nlb {
            listener: target.arn().to_string(),
            target_groups,
            test_listener,
        },
    })
}

impl RouterConfig {
    /// One line for `teal plan`.
    pub fn describe(&self) -> String {
        match self {
            RouterConfig::Sim => "simulated router".to_string(),
            RouterConfig::Alb { .. } | RouterConfig::Nlb { .. } => {
                self.listener().expect("a listener router").describe()
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
            RouterConfig::Cloudfront {
                distribution_id,
                sticky,
                test_header,
            } => format!(
                "CloudFront distribution {distribution_id} (blue) and its staging copy (green), \
                 continuous deployment up to {CLOUDFRONT_MAX_WEIGHT}%{}{}",
                if *sticky { ", sticky sessions" } else { "" },
                test_header.as_ref().map_or(String::new(), |h| format!(
                    "; requests with {h}: green first, before any production share"
                ))
            ),
            RouterConfig::Local { listen, .. } => format!("teal's proxy on {listen}"),
        }
    }

    /// What this router splits traffic on, which is also where a
    /// deployment's record lives: two members of a release on one are
    /// refused. `None` for the simulator's.
    pub fn traffic_key(&self) -> Option<String> {
        match self {
            RouterConfig::Alb { .. } | RouterConfig::Nlb { .. } => {
                Some(match self.listener().expect("a listener").target {
                    ListenerTarget::Listener(arn) => format!("listener {arn}"),
                    ListenerTarget::Rule(arn) => format!("listener rule {arn}"),
                })
            }
            RouterConfig::Route53 {
                hosted_zone_id,
                record_name,
                ..
            } => Some(format!("record {record_name} in zone {hosted_zone_id}")),
            RouterConfig::Cloudfront {
                distribution_id, ..
            } => Some(format!("CloudFront distribution {distribution_id}")),
            RouterConfig::Local { admin, .. } => Some(format!("local daemon {admin}")),
            RouterConfig::Sim => None,
        }
    }

    /// Whether this router gives canary analysis's query `placeholder` a
    /// value; `None` when the placeholder is not a router's.
    pub fn fills(&self, placeholder: &str) -> Option<bool> {
        match placeholder {
            "target_group" | "load_balancer" => Some(self.listener().is_some()),
            "distribution" => Some(matches!(self, RouterConfig::Cloudfront { .. })),
            _ => None,
        }
    }
}

/// The largest share CloudFront continuous deployment sends a staging
/// distribution (`SingleWeightConfig.Weight` is 0.0 to 0.15: "Continuous
/// deployment policy" in the CloudFront API reference).
pub const CLOUDFRONT_MAX_WEIGHT: u8 = 15;

/// What a CloudFront continuous deployment test header's name starts with.
pub const CLOUDFRONT_TEST_HEADER_PREFIX: &str = "aws-cf-cd-";

/// `[router] kind = "cloudfront"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCloudFrontRouter {
    /// Always `cloudfront`.
    pub kind: Spanned<String>,
    /// The primary distribution's id.
    pub distribution_id: Spanned<String>,
    /// Session stickiness for green's share.
    pub sticky: Option<Spanned<bool>>,
    /// The test header's name.
    pub test_header: Option<Spanned<String>>,
}

/// `[router] kind = "sim"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSimRouter {
    /// Always `sim`.
    pub kind: Spanned<String>,
}

/// `[router] kind = "alb"` or `"nlb"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListenerRouter {
    /// `alb` or `nlb`.
    pub kind: Spanned<String>,
    /// The listener whose default action splits traffic.
    pub listener_arn: Option<Spanned<String>>,
    /// Or one listener rule whose forward action splits traffic (ALB only).
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

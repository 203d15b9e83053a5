//! A stand-in for CloudFront's distributions and continuous deployment
//! policies, which moto models only in part: its distributions keep no
//! `Staging` flag, no `ContinuousDeploymentPolicyId` and no `HttpVersion`,
//! accept any `If-Match`, and it has no `CopyDistribution`, no
//! `UpdateDistributionWithStagingConfig` and no policies at all.
//!
//! It speaks CloudFront's REST-XML protocol (API version 2020-05-31) to the
//! real SDK and answers, from its own state, what the API reference says of:
//!
//! - `CreateDistribution`, `GetDistribution`, `GetDistributionConfig`,
//!   `UpdateDistribution` (`If-Match` required and checked: a stale ETag is
//!   `PreconditionFailed`; `CallerReference` cannot change: `IllegalUpdate`),
//!   `ListDistributions` (one page);
//! - `CopyDistribution` (the `Staging` header; the copy keeps the primary's
//!   config but its aliases and policy);
//! - `UpdateDistributionWithStagingConfig` (`If-Match` = "primary ETag,
//!   staging ETag"; the primary keeps its caller reference, aliases and
//!   policy, the rest is the staging config; the policy is disabled);
//! - `CreateContinuousDeploymentPolicy`, `GetContinuousDeploymentPolicyConfig`,
//!   `UpdateContinuousDeploymentPolicy`, `ListContinuousDeploymentPolicies`
//!   (one page): a `SingleWeight` above 0.15 is refused, so is a second
//!   policy for one staging distribution (`StagingDistributionInUse`), and
//!   so is attaching a policy to a distribution with HTTP/3.
//!
//! A test can hold every request after the n-th write unanswered
//! (`hold_after_writes`), to kill the caller at a known point.
//!
//! A written distribution is `InProgress` until the next `GetDistribution`
//! reads it, then `Deployed` (CloudFront takes minutes). Every other request
//! (tagging, say) goes to `upstream` (moto) unchanged.
//!
//! Not modelled: traffic itself (which edge answers whom), header-based
//! policies' routing, aliases' uniqueness, origin access control and bucket
//! policies, WAF, deleting distributions or policies, invalidations, and
//! the 20-per-account quotas.

#![allow(dead_code)]

use super::refresh_stand_in::{forward, Client};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

const NS: &str = "http://cloudfront.amazonaws.com/doc/2020-05-31/";
const ROOT: &str = "/2020-05-31";

/// One distribution.
#[derive(Debug, Clone)]
pub struct Distribution {
    pub id: String,
    pub domain: String,
    /// The `<DistributionConfig>`'s inner XML, as the SDK last wrote it.
    pub config: String,
    pub etag: String,
    pub status: &'static str,
}

/// One continuous deployment policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    /// The `<ContinuousDeploymentPolicyConfig>`'s inner XML.
    pub config: String,
    pub etag: String,
}

/// The stand-in's state.
#[derive(Debug, Default)]
pub struct Service {
    pub distributions: BTreeMap<String, Distribution>,
    pub policies: BTreeMap<String, Policy>,
    /// Every request it answered itself: (method, path, If-Match).
    pub requests: Vec<(String, String, Option<String>)>,
    /// Every policy config written (created or updated), in order.
    pub policy_writes: Vec<String>,
    /// Once this many writes are answered, hold every later request
    /// unanswered until it is set back to `None`: a test kills the caller
    /// there, at a known point.
    pub hold_after_writes: Option<usize>,
    next: u32,
}

type Answer = (u16, Vec<(&'static str, String)>, String);

fn error(status: u16, code: &str, message: &str) -> Answer {
    (
        status,
        vec![],
        format!(
            "<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
        ),
    )
}

/// The inner XML of the first `<tag>` in `xml`.
pub fn element(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml[start..end].to_string())
}

/// `xml` with the first `<tag>` set to `value` (`None`: removed), added at
/// the end if it was not there.
pub fn with_element(xml: &str, tag: &str, value: Option<&str>) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let empty = format!("<{tag}/>");
    let new = value.map_or(String::new(), |v| format!("{open}{v}{close}"));
    if let Some(start) = xml.find(&open) {
        if let Some(len) = xml[start..].find(&close) {
            let end = start + len + close.len();
            return format!("{}{new}{}", &xml[..start], &xml[end..]);
        }
    }
    if let Some(start) = xml.find(&empty) {
        return format!("{}{new}{}", &xml[..start], &xml[start + empty.len()..]);
    }
    format!("{xml}{new}")
}

/// The inner XML of a request body's root element.
fn inner(body: &str) -> String {
    let body = body.trim();
    let body = body
        .strip_prefix("<?xml")
        .and_then(|b| b.split_once("?>").map(|(_, r)| r.trim()))
        .unwrap_or(body);
    let start = body.find('>').map_or(0, |i| i + 1);
    let end = body.rfind("</").unwrap_or(body.len());
    body[start..end].to_string()
}

fn has_http3(config: &str) -> bool {
    matches!(
        element(config, "HttpVersion").as_deref(),
        Some("http3" | "http2and3")
    )
}

impl Service {
    /// How many writes (requests other than `GET`) it answered.
    pub fn writes(&self) -> usize {
        self.requests.iter().filter(|(m, _, _)| m != "GET").count()
    }

    /// Whether requests are being held ([`Service::hold_after_writes`]).
    pub fn holding(&self) -> bool {
        self.hold_after_writes.is_some_and(|n| self.writes() >= n)
    }

    /// A new id: unique across stand-ins and runs (moto, and the ledger
    /// records keyed by distribution, outlive them), upper-case like CloudFront's.
    fn tick(&mut self, what: &str) -> String {
        self.next += 1;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let mut n = nanos * 1000 + u128::from(self.next);
        let mut id = String::new();
        while n > 0 {
            id.push(
                char::from_digit((n % 36) as u32, 36)
                    .unwrap()
                    .to_ascii_uppercase(),
            );
            n /= 36;
        }
        format!("{what}{id}")
    }

    fn distribution_xml(d: &Distribution) -> String {
        format!(
            "<Distribution xmlns=\"{NS}\"><Id>{id}</Id>\
             <ARN>arn:aws:cloudfront::123456789012:distribution/{id}</ARN>\
             <Status>{status}</Status><LastModifiedTime>2026-12-03T00:00:00.000Z</LastModifiedTime>\
             <InProgressInvalidationBatches>0</InProgressInvalidationBatches>\
             <DomainName>{domain}</DomainName>\
             <DistributionConfig>{config}</DistributionConfig></Distribution>",
            id = d.id,
            status = d.status,
            domain = d.domain,
            config = d.config
        )
    }

    fn with_distribution(status: u16, d: &Distribution) -> Answer {
        (
            status,
            vec![("ETag", d.etag.clone())],
            Self::distribution_xml(d),
        )
    }

    fn policy_xml(p: &Policy) -> String {
        format!(
            "<ContinuousDeploymentPolicy xmlns=\"{NS}\"><Id>{}</Id>\
             <LastModifiedTime>2026-12-03T00:00:00.000Z</LastModifiedTime>\
             <ContinuousDeploymentPolicyConfig>{}</ContinuousDeploymentPolicyConfig>\
             </ContinuousDeploymentPolicy>",
            p.id, p.config
        )
    }

    /// A new distribution of `config`, `InProgress`: the 201 answer.
    fn create(&mut self, config: String) -> Answer {
        let id = self.tick("E");
        let d = Distribution {
            domain: format!("d{}.cloudfront.net", id.to_lowercase()),
            config,
            etag: self.tick("ET"),
            status: "InProgress",
            id: id.clone(),
        };
        let answer = Self::with_distribution(201, &d);
        self.distributions.insert(id, d);
        answer
    }

    /// A policy config's problem, if CloudFront would refuse it.
    fn policy_problem(&self, config: &str) -> Option<Answer> {
        if let Some(w) = element(config, "Weight") {
            match w.parse::<f32>() {
                Ok(w) if (0.0..=0.15).contains(&w) => {}
                _ => {
                    return Some(error(
                        400,
                        "InvalidArgument",
                        &format!("Weight {w} is not between 0 and 0.15"),
                    ))
                }
            }
        }
        let dns = element(config, "Items").unwrap_or_default();
        let named = element(&dns, "DnsName").unwrap_or(dns);
        let staging = self
            .distributions
            .values()
            .any(|d| d.domain == named && element(&d.config, "Staging").as_deref() == Some("true"));
        (!staging).then(|| {
            error(
                400,
                "InvalidArgument",
                &format!("{named} is not a staging distribution's domain name"),
            )
        })
    }

    /// A distribution config's write refused as CloudFront would.
    fn update_problem(&self, old: &Distribution, new: &str) -> Option<Answer> {
        if element(new, "CallerReference") != element(&old.config, "CallerReference") {
            return Some(error(400, "IllegalUpdate", "CallerReference cannot change"));
        }
        if element(new, "Staging") != element(&old.config, "Staging") {
            return Some(error(400, "IllegalUpdate", "Staging cannot change"));
        }
        let policy = element(new, "ContinuousDeploymentPolicyId").filter(|p| !p.is_empty());
        if let Some(p) = policy {
            if !self.policies.contains_key(&p) {
                return Some(error(404, "NoSuchContinuousDeploymentPolicy", &p));
            }
            if has_http3(new) {
                return Some(error(
                    400,
                    "InvalidArgument",
                    "continuous deployment is not supported with HTTP/3",
                ));
            }
        }
        None
    }

    /// The answer to one request, or `None` for one that is not ours.
    pub fn answer(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        headers: &BTreeMap<String, String>,
        body: &str,
    ) -> Option<Answer> {
        let rest = path.strip_prefix(ROOT)?;
        let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        let if_match = headers.get("if-match").cloned();
        let ours = matches!(
            (method, parts.as_slice()),
            ("POST" | "GET", ["distribution"])
                | ("GET", ["distribution", _])
                | ("GET" | "PUT", ["distribution", _, "config"])
                | ("POST", ["distribution", _, "copy"])
                | ("PUT", ["distribution", _, "promote-staging-config"])
                | ("POST" | "GET", ["continuous-deployment-policy"])
                | ("GET", ["continuous-deployment-policy", _, "config"])
                | ("PUT", ["continuous-deployment-policy", _])
        );
        if !ours {
            return None;
        }
        self.requests
            .push((method.to_string(), path.to_string(), if_match.clone()));
        Some(self.route(method, &parts, query, if_match, headers, body))
    }

    fn route(
        &mut self,
        method: &str,
        parts: &[&str],
        query: &str,
        if_match: Option<String>,
        headers: &BTreeMap<String, String>,
        body: &str,
    ) -> Answer {
        let no_such = |id: &str| error(404, "NoSuchDistribution", &format!("no distribution {id}"));
        match (method, parts) {
            ("POST", ["distribution"]) => {
                self.create(inner(body))
            }
            ("GET", ["distribution"]) => {
                let items: String = self
                    .distributions
                    .values()
                    .map(|d| {
                        format!(
                            "<DistributionSummary><Id>{id}</Id>\
                             <ARN>arn:aws:cloudfront::123456789012:distribution/{id}</ARN>\
                             <Status>{}</Status>\
                             <LastModifiedTime>2026-12-03T00:00:00.000Z</LastModifiedTime>\
                             <DomainName>{}</DomainName>{}</DistributionSummary>",
                            d.status,
                            d.domain,
                            with_element(&d.config, "CallerReference", None),
                            id = d.id
                        )
                    })
                    .collect();
                (
                    200,
                    vec![],
                    format!(
                        "<DistributionList xmlns=\"{NS}\"><Marker></Marker><MaxItems>100</MaxItems>\
                         <IsTruncated>false</IsTruncated><Quantity>{}</Quantity><Items>{items}</Items>\
                         </DistributionList>",
                        self.distributions.len()
                    ),
                )
            }
            ("GET", ["distribution", id]) => match self.distributions.get_mut(*id) {
                Some(d) => {
                    let answer = Self::with_distribution(200, d);
                    d.status = "Deployed";
                    answer
                }
                None => no_such(id),
            },
            ("GET", ["distribution", id, "config"]) => match self.distributions.get(*id) {
                Some(d) => (
                    200,
                    vec![("ETag", d.etag.clone())],
                    format!("<DistributionConfig xmlns=\"{NS}\">{}</DistributionConfig>", d.config),
                ),
                None => no_such(id),
            },
            ("PUT", ["distribution", id, "config"]) => {
                let Some(old) = self.distributions.get(*id).cloned() else {
                    return no_such(id);
                };
                match if_match {
                    None => return error(400, "InvalidIfMatchVersion", "If-Match is required"),
                    Some(e) if e != old.etag => {
                        return error(412, "PreconditionFailed", &format!("ETag {e} is not current"))
                    }
                    Some(_) => {}
                }
                let config = inner(body);
                if let Some(problem) = self.update_problem(&old, &config) {
                    return problem;
                }
                let etag = self.tick("ET");
                let d = self.distributions.get_mut(*id).expect("read above");
                d.config = config;
                d.etag = etag;
                d.status = "InProgress";
                Self::with_distribution(200, d)
            }
            ("POST", ["distribution", id, "copy"]) => {
                let Some(primary) = self.distributions.get(*id).cloned() else {
                    return no_such(id);
                };
                if if_match.as_deref() != Some(primary.etag.as_str()) {
                    return error(412, "PreconditionFailed", "If-Match is not the primary's ETag");
                }
                let reference = element(&inner(body), "CallerReference").unwrap_or_default();
                let staging = headers.get("staging").is_some_and(|s| s == "true");
                let mut config = with_element(&primary.config, "CallerReference", Some(&reference));
                config = with_element(&config, "Staging", Some(if staging { "true" } else { "false" }));
                config = with_element(&config, "ContinuousDeploymentPolicyId", None);
                config = with_element(&config, "Aliases", Some("<Quantity>0</Quantity>"));
                self.create(config)
            }
            ("PUT", ["distribution", id, "promote-staging-config"]) => {
                let staging_id = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("StagingDistributionId="))
                    .unwrap_or_default()
                    .to_string();
                let (Some(primary), Some(staging)) = (
                    self.distributions.get(*id).cloned(),
                    self.distributions.get(&staging_id).cloned(),
                ) else {
                    return no_such(&format!("{id} or {staging_id}"));
                };
                let wanted = format!("{}, {}", primary.etag, staging.etag);
                if if_match.as_deref().map(|m| m.replace(' ', "")) != Some(wanted.replace(' ', "")) {
                    return error(412, "PreconditionFailed", &format!("If-Match must be {wanted}"));
                }
                let mut config = staging.config.clone();
                for tag in ["CallerReference", "Aliases", "ContinuousDeploymentPolicyId"] {
                    config = with_element(&config, tag, element(&primary.config, tag).as_deref());
                }
                config = with_element(&config, "Staging", Some("false"));
                // "This action will disable the continuous deployment policy"
                // (API reference).
                let policy_etag = self.tick("ET");
                if let Some(p) = element(&config, "ContinuousDeploymentPolicyId")
                    .and_then(|id| self.policies.get_mut(&id))
                {
                    p.config = with_element(&p.config, "Enabled", Some("false"));
                    p.etag = policy_etag;
                }
                let etag = self.tick("ET");
                let d = self.distributions.get_mut(*id).expect("read above");
                d.config = config;
                d.etag = etag;
                d.status = "InProgress";
                Self::with_distribution(200, d)
            }
            ("GET", ["continuous-deployment-policy"]) => {
                let items: String = self
                    .policies
                    .values()
                    .map(|p| {
                        let policy = Self::policy_xml(p).replace(&format!(" xmlns=\"{NS}\""), "");
                        format!("<ContinuousDeploymentPolicySummary>{policy}</ContinuousDeploymentPolicySummary>")
                    })
                    .collect();
                (
                    200,
                    vec![],
                    format!(
                        "<ContinuousDeploymentPolicyList xmlns=\"{NS}\"><MaxItems>100</MaxItems>\
                         <Quantity>{}</Quantity><Items>{items}</Items></ContinuousDeploymentPolicyList>",
                        self.policies.len()
                    ),
                )
            }
            ("POST", ["continuous-deployment-policy"]) => {
                let config = inner(body);
                if let Some(problem) = self.policy_problem(&config) {
                    return problem;
                }
                let staging = |c: &str| element(c, "DnsName");
                if self
                    .policies
                    .values()
                    .any(|p| staging(&p.config) == staging(&config))
                {
                    return error(
                        409,
                        "StagingDistributionInUse",
                        "A continuous deployment policy for this staging distribution already exists.",
                    );
                }
                self.policy_writes.push(config.clone());
                let p = Policy {
                    id: self.tick("P"),
                    config,
                    etag: self.tick("ET"),
                };
                let answer = (201, vec![("ETag", p.etag.clone())], Self::policy_xml(&p));
                self.policies.insert(p.id.clone(), p);
                answer
            }
            ("GET", ["continuous-deployment-policy", id, "config"]) => match self.policies.get(*id) {
                Some(p) => (
                    200,
                    vec![("ETag", p.etag.clone())],
                    format!(
                        "<ContinuousDeploymentPolicyConfig xmlns=\"{NS}\">{}</ContinuousDeploymentPolicyConfig>",
                        p.config
                    ),
                ),
                None => error(404, "NoSuchContinuousDeploymentPolicy", id),
            },
            ("PUT", ["continuous-deployment-policy", id]) => {
                let Some(old) = self.policies.get(*id).cloned() else {
                    return error(404, "NoSuchContinuousDeploymentPolicy", id);
                };
                if if_match.as_deref() != Some(old.etag.as_str()) {
                    return error(412, "PreconditionFailed", "If-Match is not the policy's ETag");
                }
                let config = inner(body);
                if let Some(problem) = self.policy_problem(&config) {
                    return problem;
                }
                self.policy_writes.push(config.clone());
                let etag = self.tick("ET");
                let p = self.policies.get_mut(*id).expect("read above");
                p.config = config;
                p.etag = etag;
                (200, vec![("ETag", p.etag.clone())], Self::policy_xml(p))
            }
            _ => error(400, "InvalidAction", "not modelled"),
        }
    }

    /// The origin path a distribution's (only) origin has.
    pub fn origin_path(&self, id: &str) -> Option<String> {
        self.distributions
            .get(id)
            .and_then(|d| element(&d.config, "OriginPath"))
    }

    /// The staging distribution's id, if one was made.
    pub fn staging_id(&self) -> Option<String> {
        self.distributions
            .values()
            .find(|d| element(&d.config, "Staging").as_deref() == Some("true"))
            .map(|d| d.id.clone())
    }

    /// The policy attached to `id`: (enabled, weight).
    pub fn policy_of(&self, id: &str) -> Option<(bool, f32)> {
        let d = self.distributions.get(id)?;
        let p = self
            .policies
            .get(&element(&d.config, "ContinuousDeploymentPolicyId")?)?;
        let enabled = element(&p.config, "Enabled").as_deref() == Some("true");
        let weight = element(&p.config, "Weight")
            .and_then(|w| w.parse().ok())
            .unwrap_or(0.0);
        Some((enabled, weight))
    }
}

/// Serve `service` on a loopback port; other requests go to `upstream`.
pub async fn serve(service: Arc<Mutex<Service>>, upstream: Option<String>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client: Client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<Full<Bytes>>();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (service, upstream, client) = (service.clone(), upstream.clone(), client.clone());
            tokio::spawn(async move {
                let handle = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (service, upstream, client) =
                            (service.clone(), upstream.clone(), client.clone());
                        async move {
                            while service.lock().unwrap().holding() {
                                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                            }
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await?.to_bytes();
                            let headers: BTreeMap<String, String> = parts
                                .headers
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                                })
                                .collect();
                            let answered = service.lock().unwrap().answer(
                                parts.method.as_str(),
                                parts.uri.path(),
                                parts.uri.query().unwrap_or(""),
                                &headers,
                                &String::from_utf8_lossy(&body),
                            );
                            let (status, extra, xml) = match (answered, upstream) {
                                (Some(a), _) => a,
                                (None, Some(up)) => {
                                    return forward(&client, &up, parts, body).await;
                                }
                                (None, None) => error(400, "InvalidAction", "not modelled"),
                            };
                            let mut answer = hyper::Response::builder()
                                .status(status)
                                .header("content-type", "text/xml");
                            for (k, v) in extra {
                                answer = answer.header(k, v);
                            }
                            Ok::<_, hyper::Error>(answer.body(Full::new(Bytes::from(xml))).unwrap())
                        }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, handle)
                    .await;
            });
        }
    });
    addr
}

//! A stand-in for the Auto Scaling instance-refresh API, which moto does not
//! implement: an HTTP server speaking the Auto Scaling query protocol
//! (form-encoded requests, XML answers, AWS error documents) to the real SDK.
//!
//! It keeps refreshes the way the service does: newest first, one active at a
//! time per group (`InstanceRefreshInProgress`), rollback only of an active
//! one (`ActiveInstanceRefreshNotFound` otherwise). Every other action goes to
//! `upstream` (moto) unchanged, so a `teal` process can be pointed at it with
//! `AWS_ENDPOINT_URL_AUTO_SCALING` and see one Auto Scaling API.
//!
//! With `auto` set, each `DescribeInstanceRefreshes` moves the newest refresh
//! on one status (Pending → InProgress → Successful; RollbackInProgress →
//! RollbackSuccessful), holding at InProgress while `hold` is set; a
//! successful refresh sets the group's launch template upstream, as the
//! service does. Used by the adapter's unit tests (`src/aws/refresh/tests.rs`)
//! and by `tests/aws_asg_rolling.rs`.

#![allow(dead_code)]

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One instance refresh.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub id: String,
    pub group: String,
    pub status: &'static str,
    pub reason: String,
    pub percent: i32,
    pub template: String,
    pub version: String,
    pub start: String,
}

/// The stand-in's state.
#[derive(Debug, Default)]
pub struct Service {
    /// Newest first.
    pub refreshes: Vec<Refresh>,
    /// Every request it answered itself, as form fields, in order.
    pub requests: Vec<BTreeMap<String, String>>,
    /// Move refreshes on by one status per describe.
    pub auto: bool,
    /// With `auto`: hold refreshes at InProgress.
    pub hold: bool,
    /// Every refresh's start time, instead of the wall clock's.
    pub fixed_start: Option<String>,
}

const ACTIVE: [&str; 5] = [
    "Pending",
    "InProgress",
    "Baking",
    "Cancelling",
    "RollbackInProgress",
];
const NS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";
const OURS: [&str; 3] = [
    "StartInstanceRefresh",
    "DescribeInstanceRefreshes",
    "RollbackInstanceRefresh",
];

/// A group whose launch template a finished refresh changes: (group, template id, version).
type GroupUpdate = (String, String, String);

impl Service {
    /// The answer to a request, or `None` if it is not an instance-refresh action.
    pub fn answer(
        &mut self,
        form: &BTreeMap<String, String>,
    ) -> Option<((u16, String), Option<GroupUpdate>)> {
        let action = form.get("Action").cloned().unwrap_or_default();
        if !OURS.contains(&action.as_str()) {
            return None;
        }
        self.requests.push(form.clone());
        let group = form
            .get("AutoScalingGroupName")
            .cloned()
            .unwrap_or_default();
        let ok = |body: String| {
            (
                200,
                format!(
                    "<{action}Response xmlns=\"{NS}\"><{action}Result>{body}</{action}Result>\
                     <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></{action}Response>"
                ),
            )
        };
        let error = |code: &str, message: &str| {
            (
                400,
                format!(
                    "<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type><Code>{code}</Code>\
                     <Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
                ),
            )
        };
        let newest = self.refreshes.iter().position(|r| r.group == group);
        let active = newest.filter(|i| ACTIVE.contains(&self.refreshes[*i].status));
        let mut update = None;
        let answer = match action.as_str() {
            "StartInstanceRefresh" => {
                if active.is_some() {
                    return Some((
                        error(
                            "InstanceRefreshInProgress",
                            "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
                        ),
                        None,
                    ));
                }
                let id = format!("ir-{}", self.refreshes.len() + 1);
                let field = |k: &str| {
                    form.get(&format!("DesiredConfiguration.LaunchTemplate.{k}"))
                        .cloned()
                        .unwrap_or_default()
                };
                let start = self.fixed_start.clone().unwrap_or_else(|| {
                    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
                });
                self.refreshes.insert(
                    0,
                    Refresh {
                        id: id.clone(),
                        group,
                        status: "Pending",
                        reason: String::new(),
                        percent: 0,
                        template: field("LaunchTemplateId"),
                        version: field("Version"),
                        start,
                    },
                );
                ok(format!("<InstanceRefreshId>{id}</InstanceRefreshId>"))
            }
            "RollbackInstanceRefresh" => match newest.map(|i| &mut self.refreshes[i]) {
                Some(r) if ["Pending", "InProgress", "Baking"].contains(&r.status) => {
                    r.status = "RollbackInProgress";
                    r.reason = "rollback requested".into();
                    let id = r.id.clone();
                    ok(format!("<InstanceRefreshId>{id}</InstanceRefreshId>"))
                }
                _ => error(
                    "ActiveInstanceRefreshNotFound",
                    "No active Instance Refresh found for the group.",
                ),
            },
            _ => {
                if self.auto {
                    if let Some(i) = newest {
                        update = self.step(i);
                    }
                }
                let members: String = self
                    .refreshes
                    .iter()
                    .filter(|r| r.group == group)
                    .map(|r| {
                        format!(
                            "<member><InstanceRefreshId>{}</InstanceRefreshId>\
                             <AutoScalingGroupName>{}</AutoScalingGroupName>\
                             <Status>{}</Status><StatusReason>{}</StatusReason>\
                             <StartTime>{}</StartTime><PercentageComplete>{}</PercentageComplete>\
                             <DesiredConfiguration><LaunchTemplate><LaunchTemplateId>{}</LaunchTemplateId>\
                             <Version>{}</Version></LaunchTemplate></DesiredConfiguration></member>",
                            r.id, r.group, r.status, r.reason, r.start, r.percent, r.template, r.version
                        )
                    })
                    .collect();
                ok(format!("<InstanceRefreshes>{members}</InstanceRefreshes>"))
            }
        };
        Some((answer, update))
    }

    /// Move refresh `i` on by one status.
    fn step(&mut self, i: usize) -> Option<GroupUpdate> {
        let hold = self.hold;
        let r = &mut self.refreshes[i];
        match r.status {
            "Pending" => {
                r.status = "InProgress";
                r.percent = 50;
            }
            "InProgress" if !hold => {
                r.status = "Successful";
                r.percent = 100;
                return Some((r.group.clone(), r.template.clone(), r.version.clone()));
            }
            "RollbackInProgress" => r.status = "RollbackSuccessful",
            _ => {}
        }
        None
    }
}

/// Serve `service` on a loopback port; other actions go to `upstream`.
pub async fn serve(service: Arc<Mutex<Service>>, upstream: Option<String>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
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
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await?.to_bytes();
                            let form = url_form(&String::from_utf8_lossy(&body));
                            let answered = service.lock().unwrap().answer(&form);
                            let (status, xml) = match (answered, upstream) {
                                (Some((answer, update)), upstream) => {
                                    if let (Some((group, id, version)), Some(up)) =
                                        (update, &upstream)
                                    {
                                        set_template(&client, up, &group, &id, &version).await;
                                    }
                                    answer
                                }
                                (None, Some(up)) => {
                                    return forward(&client, &up, parts, body).await;
                                }
                                (None, None) => (
                                    400,
                                    format!(
                                        "<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type>\
                                         <Code>InvalidAction</Code><Message>the stand-in does not do {}</Message>\
                                         </Error><RequestId>r-1</RequestId></ErrorResponse>",
                                        form.get("Action").cloned().unwrap_or_default()
                                    ),
                                ),
                            };
                            Ok::<_, hyper::Error>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "text/xml")
                                    .body(Full::new(Bytes::from(xml)))
                                    .unwrap(),
                            )
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

/// The HTTP client a stand-in forwards with.
pub type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

/// The request, unchanged but for its address, sent upstream; its answer.
pub async fn forward(
    client: &Client,
    upstream: &str,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = hyper::Request::builder()
        .method(parts.method)
        .uri(format!("{}{path}", upstream.trim_end_matches('/')));
    for (k, v) in &parts.headers {
        if k != hyper::header::HOST {
            req = req.header(k, v);
        }
    }
    let answer = match client.request(req.body(Full::new(body)).unwrap()).await {
        Ok(a) => a,
        Err(e) => {
            return Ok(hyper::Response::builder()
                .status(502)
                .body(Full::new(Bytes::from(format!("upstream: {e}"))))
                .unwrap())
        }
    };
    let (parts, body) = answer.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(hyper::Response::from_parts(parts, Full::new(body)))
}

/// What the service does when a refresh succeeds: the group now uses the
/// refresh's launch template version.
async fn set_template(client: &Client, upstream: &str, group: &str, id: &str, version: &str) {
    let body = format!(
        "Action=UpdateAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName={group}\
         &LaunchTemplate.LaunchTemplateId={id}&LaunchTemplate.Version={version}"
    );
    let req = hyper::Request::post(upstream)
        .header("content-type", "application/x-www-form-urlencoded")
        // moto tells services apart by the credential scope.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261122/us-east-1/autoscaling/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let answer = client
        .request(req)
        .await
        .expect("UpdateAutoScalingGroup upstream");
    assert!(
        answer.status().is_success(),
        "UpdateAutoScalingGroup upstream: {}",
        answer.status()
    );
}

/// `a=1&b=x%20y` → {a: 1, b: "x y"}.
pub fn url_form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

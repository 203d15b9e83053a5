//! A throttling proxy in front of moto (which never throttles): AWS's token
//! buckets, per account and API family, applied to every request, and the
//! real throttling answer of each protocol when a bucket is empty. Requests
//! that find a token go upstream unchanged.
//!
//! The families and their sizes, each from AWS's page (per account and
//! Region; a bucket starts full, a request takes one token, it refills at a
//! fixed rate up to its size):
//!
//! | family | size | refill/s | source |
//! |---|---:|---:|---|
//! | ELBv2 `Describe*` | 40 | 10 | [ELB API throttling](https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html) |
//! | ELBv2 other actions | 20 | 2 | not published: a conservative pick |
//! | ECS read actions (`Describe*`, `List*`) | 50 | 20 | [ECS request throttling](https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html) (cluster reads 50 burst; 20/s sustained for service reads) |
//! | ECS other actions | 20 | 5 | not found in the stored copy of that page: a conservative pick |
//! | CloudWatch `DescribeAlarms` | 9 | 9 | [CloudWatch quotas](https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html): 9 TPS |
//! | CloudWatch `GetMetricData` | 50 | 50 | same page: 50 TPS |
//! | CloudWatch other actions | 3 | 3 | same page: 3 TPS (`PutMetricAlarm`, `SetAlarmState`) |
//! | Route 53, every action | 5 | 5 | [Route 53 quotas](https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DNSLimitations.html): five requests a second per account |
//! | EC2 `Describe*` | 100 | 20 | [EC2 API throttling](https://docs.aws.amazon.com/AWSEC2/latest/APIReference/throttling.html) |
//! | Auto Scaling, Application Auto Scaling | 20 | 5 | not published: a conservative pick |
//!
//! DynamoDB is not throttled here: its item reads and writes are metered by
//! capacity, not request rate, and an on-demand ledger table is far from its
//! limits. What this does not model: buckets shared with AWS's own callers
//! (ECS's calls to ELB on your behalf have their own), resource-rate
//! limits (EC2's per-resource buckets), and quotas raised by Support.
//!
//! The answers, per protocol: awsQuery (ELBv2, Auto Scaling) an
//! `ErrorResponse` document, HTTP 400, code `Throttling` (ELB's page names
//! `ThrottlingException`, whose SDK code is `Throttling`); ec2Query
//! `RequestLimitExceeded`; awsJson (ECS, Application Auto Scaling)
//! `ThrottlingException` in `__type`; RPC v2 CBOR (CloudWatch) a CBOR map with
//! `__type` `Throttling` and the `x-amzn-query-error` header the SDK reads
//! for query-compatible services; restXml (Route 53) `Throttling`.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::refresh_stand_in::{forward, Client};

/// One bucket's parameters.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub burst: f64,
    pub refill: f64,
}

/// The family of a request: its name and AWS's quota; `None` for requests
/// AWS does not meter by rate (DynamoDB).
pub fn family(service: &str, action: &str) -> Option<(&'static str, Quota)> {
    let q = |burst, refill| Quota { burst, refill };
    let describe =
        action.starts_with("Describe") || action.starts_with("List") || action.starts_with("Get");
    Some(match service {
        "elasticloadbalancing" if describe => ("elbv2:describe", q(40.0, 10.0)),
        "elasticloadbalancing" => ("elbv2:other", q(20.0, 2.0)),
        "ecs" if describe => ("ecs:read", q(50.0, 20.0)),
        "ecs" => ("ecs:other", q(20.0, 5.0)),
        "monitoring" if action == "DescribeAlarms" => ("cloudwatch:DescribeAlarms", q(9.0, 9.0)),
        "monitoring" if action == "GetMetricData" => ("cloudwatch:GetMetricData", q(50.0, 50.0)),
        "monitoring" => ("cloudwatch:other", q(3.0, 3.0)),
        "route53" => ("route53", q(5.0, 5.0)),
        "ec2" if describe => ("ec2:describe", q(100.0, 20.0)),
        "ec2" => ("ec2:other", q(50.0, 5.0)),
        "autoscaling" => ("autoscaling", q(20.0, 5.0)),
        "application-autoscaling" => ("application-autoscaling", q(20.0, 5.0)),
        _ => return None,
    })
}

#[derive(Debug)]
struct Bucket {
    quota: Quota,
    tokens: f64,
    at: Instant,
}

/// What the proxy saw of one family.
#[derive(Debug, Clone, Default)]
pub struct FamilyStats {
    /// Requests let through.
    pub passed: u64,
    /// Requests answered with a throttling error.
    pub throttled: u64,
    /// The most requests let through in any one wall-clock second.
    pub peak_per_second: u64,
    /// Its refill rate.
    pub refill: f64,
    /// Its size.
    pub burst: f64,
    per_second: BTreeMap<u64, u64>,
}

/// The proxy's state: buckets per (account, family), and what it saw.
#[derive(Debug)]
pub struct Throttle {
    started: Instant,
    buckets: BTreeMap<(String, &'static str), Bucket>,
    /// Per family.
    pub stats: BTreeMap<&'static str, FamilyStats>,
    /// Per action: how long upstream (moto) took to answer each request let
    /// through, in ms. moto answers from one Python process, so under load
    /// these are most of a call's time; the benchmark reports them.
    pub answer_ms: BTreeMap<String, Vec<u32>>,
    /// Off: every request passes (counted all the same).
    pub enabled: bool,
    /// Instead of the buckets: throttle the second request of each family
    /// and every `n`-th after it (to see every protocol's answer understood,
    /// deterministically; `n` well above the calls a check makes at once, so
    /// that no retried check meets the same throttle again).
    pub every: Option<u64>,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle {
            started: Instant::now(),
            buckets: BTreeMap::new(),
            stats: BTreeMap::new(),
            answer_ms: BTreeMap::new(),
            enabled: true,
            every: None,
        }
    }
}

impl Throttle {
    /// A throttle that throttles each family's second request and every
    /// `n`-th after it instead of using the buckets.
    pub fn every(n: u64) -> Throttle {
        Throttle {
            every: Some(n),
            ..Throttle::default()
        }
    }

    /// Take a token for `account`'s request; false: throttled.
    fn admit(&mut self, account: &str, service: &str, action: &str) -> bool {
        let Some((name, quota)) = family(service, action) else {
            return true;
        };
        let now = Instant::now();
        let b = self
            .buckets
            .entry((account.to_string(), name))
            .or_insert(Bucket {
                quota,
                tokens: quota.burst,
                at: now,
            });
        let secs = now.duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + secs * b.quota.refill).min(b.quota.burst);
        b.at = now;
        let s = self.stats.entry(name).or_default();
        let ok = match self.every {
            Some(n) => {
                let k = s.passed + s.throttled + 1;
                k < 2 || (k - 2) % n != 0
            }
            None => !self.enabled || b.tokens >= 1.0,
        };
        if ok && self.enabled && self.every.is_none() {
            b.tokens -= 1.0;
        }
        s.refill = quota.refill;
        s.burst = quota.burst;
        if ok {
            s.passed += 1;
            let sec = now.duration_since(self.started).as_secs();
            let n = s.per_second.entry(sec).or_default();
            *n += 1;
            s.peak_per_second = s.peak_per_second.max(*n);
        } else {
            s.throttled += 1;
        }
        ok
    }

    /// Requests let through, all families.
    pub fn passed(&self) -> u64 {
        self.stats.values().map(|s| s.passed).sum()
    }

    /// Requests throttled, all families.
    pub fn throttled(&self) -> u64 {
        self.stats.values().map(|s| s.throttled).sum()
    }
}

/// The service (from the SigV4 credential scope) and the account (its
/// access key) of a request.
fn signer(headers: &hyper::HeaderMap) -> (String, String) {
    let auth = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Credential=AKID/20260101/us-east-1/ecs/aws4_request
    let scope = auth
        .split("Credential=")
        .nth(1)
        .and_then(|s| s.split([',', ' ']).next())
        .unwrap_or_default();
    let parts: Vec<&str> = scope.split('/').collect();
    let account = parts.first().copied().unwrap_or_default().to_string();
    let service = parts.get(3).copied().unwrap_or_default().to_string();
    (service, account)
}

/// The action of a request, by its protocol.
fn action(parts: &hyper::http::request::Parts, body: &[u8]) -> String {
    if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    let path = parts.uri.path();
    if let Some((_, op)) = path.split_once("/operation/") {
        return op.to_string();
    }
    let form = String::from_utf8_lossy(body);
    if let Some(a) = form.split('&').find_map(|p| p.strip_prefix("Action=")) {
        return a.to_string();
    }
    // restXml (Route 53): what the path and method say.
    let verb = match parts.method {
        hyper::Method::GET => "Get",
        _ => "Change",
    };
    format!("{verb}{path}")
}

/// The throttling answer `service`'s protocol gives.
fn throttled(service: &str) -> hyper::Response<Full<Bytes>> {
    let xml = |code: &str| {
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>Rate exceeded</Message></Error><RequestId>throttle-proxy</RequestId></ErrorResponse>"
        )
    };
    let (content_type, body, extra): (&str, Vec<u8>, Option<(&str, &str)>) = match service {
        "ecs" | "application-autoscaling" => (
            "application/x-amz-json-1.1",
            br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_vec(),
            Some(("x-amzn-errortype", "ThrottlingException")),
        ),
        "monitoring" => (
            "application/cbor",
            cbor_error("Throttling", "Rate exceeded"),
            Some(("x-amzn-query-error", "Throttling;Sender")),
        ),
        "ec2" => (
            "text/xml",
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code>\
             <Message>Request limit exceeded.</Message></Error></Errors>\
             <RequestID>throttle-proxy</RequestID></Response>"
                .as_bytes()
                .to_vec(),
            None,
        ),
        _ => ("text/xml", xml("Throttling").into_bytes(), None),
    };
    let mut r = hyper::Response::builder()
        .status(400)
        .header("content-type", content_type);
    if service == "monitoring" {
        r = r.header("smithy-protocol", "rpc-v2-cbor");
    }
    if let Some((k, v)) = extra {
        r = r.header(k, v);
    }
    r.body(Full::new(Bytes::from(body))).unwrap()
}

/// `{"__type": code, "message": message}` in CBOR.
fn cbor_error(code: &str, message: &str) -> Vec<u8> {
    fn text(out: &mut Vec<u8>, s: &str) {
        let n = s.len();
        assert!(n < 256);
        if n < 24 {
            out.push(0x60 + n as u8);
        } else {
            out.extend([0x78, n as u8]);
        }
        out.extend(s.as_bytes());
    }
    let mut out = vec![0xa2];
    text(&mut out, "__type");
    text(&mut out, code);
    text(&mut out, "message");
    text(&mut out, message);
    out
}

/// moto and its CloudWatch shim behind one throttle: its state, and a
/// [`Moto`](super::Moto) whose endpoints are the proxies.
pub async fn throttled_moto(
    m: &super::Moto,
    throttle: Throttle,
) -> (Arc<Mutex<Throttle>>, super::Moto) {
    let throttle = Arc::new(Mutex::new(throttle));
    let endpoint = serve(throttle.clone(), m.endpoint.clone()).await;
    let cloudwatch = serve(throttle.clone(), m.cloudwatch.clone()).await;
    let proxied = super::Moto {
        endpoint: format!("http://{endpoint}"),
        cloudwatch: format!("http://{cloudwatch}"),
    };
    (throttle, proxied)
}

/// Serve the proxy on a loopback port in front of `upstream`; several
/// proxies (moto, the CloudWatch shim) may share one `throttle`.
pub async fn serve(throttle: Arc<Mutex<Throttle>>, upstream: String) -> SocketAddr {
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
            let (throttle, upstream, client) = (throttle.clone(), upstream.clone(), client.clone());
            tokio::spawn(async move {
                let handle = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (throttle, upstream, client) =
                            (throttle.clone(), upstream.clone(), client.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await?.to_bytes();
                            let (service, account) = signer(&parts.headers);
                            let action = action(&parts, &body);
                            let admitted =
                                throttle.lock().unwrap().admit(&account, &service, &action);
                            if !admitted {
                                return Ok::<_, hyper::Error>(throttled(&service));
                            }
                            let t = Instant::now();
                            let answer = forward(&client, &upstream, parts, body).await;
                            let took = t.elapsed().as_millis() as u32;
                            let mut th = throttle.lock().unwrap();
                            th.answer_ms.entry(action).or_default().push(took);
                            answer
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

//! The demo app: a tiny HTTP service to deploy with the local provider.
//!
//! `teal demo-app --port P --revision R` (also `cargo run --example demo_app`).
//! The revision label may carry options after `+`, so that a deployment can
//! ask for a misbehaving green: `v2+fail=0.3` fails 30% of requests with a
//! 500, `+latency=50ms` adds latency, `+slow-start=5s` answers 503 (the
//! health path and every request: it is not ready) for the first five seconds, `+fail-after=2s` starts failing
//! only two seconds after the start (a revision that degrades). On SIGTERM it stops accepting,
//! finishes the requests in flight, and exits.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a revision behaves, from its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// The label, options included.
    pub revision: String,
    /// Share of requests answered 500.
    pub fail: f64,
    /// Added to every answer.
    pub latency: Duration,
    /// Health answers 503 until this long after the start.
    pub slow_start: Duration,
    /// `fail` applies only from this long after the start.
    pub fail_after: Duration,
}

impl Behaviour {
    /// Parse `v2+fail=0.3+latency=50ms`.
    pub fn parse(revision: &str) -> Result<Behaviour, String> {
        let mut b = Behaviour {
            revision: revision.to_string(),
            fail: 0.0,
            latency: Duration::ZERO,
            slow_start: Duration::ZERO,
            fail_after: Duration::ZERO,
        };
        for opt in revision.split('+').skip(1) {
            let (k, v) = opt
                .split_once('=')
                .ok_or_else(|| format!("revision option {opt:?} is not KEY=VALUE"))?;
            let dur = || humantime::parse_duration(v).map_err(|e| format!("{k}={v}: {e}"));
            match k {
                "fail" => {
                    b.fail = v
                        .parse::<f64>()
                        .ok()
                        .filter(|f| (0.0..=1.0).contains(f))
                        .ok_or_else(|| format!("fail={v}: a share from 0 to 1"))?
                }
                "latency" => b.latency = dur()?,
                "slow-start" => b.slow_start = dur()?,
                "fail-after" => b.fail_after = dur()?,
                _ => {
                    return Err(format!(
                        "unknown revision option {k:?} (fail, fail-after, latency, slow-start)"
                    ))
                }
            }
        }
        Ok(b)
    }
}

/// Serve until SIGTERM or SIGINT, then drain.
pub async fn serve(port: u16, behaviour: Behaviour, health_path: String) -> std::io::Result<()> {
    let started = Instant::now();
    let b = Arc::new(behaviour);
    let health_path: Arc<str> = health_path.into();
    super::http::serve_until_signal(port, move |req| {
        let (b, health_path) = (b.clone(), health_path.clone());
        async move { answer(&b, &health_path, started, req).await }
    })
    .await
}

async fn answer(
    b: &Behaviour,
    health_path: &str,
    started: Instant,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header("x-revision", b.revision.as_str())
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    if started.elapsed() < b.slow_start {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "starting\n".into());
    }
    if req.uri().path() == health_path {
        return reply(StatusCode::OK, "ok\n".into());
    }
    if !b.latency.is_zero() {
        tokio::time::sleep(b.latency).await;
    }
    if b.fail > 0.0 && started.elapsed() >= b.fail_after && rand::random::<f64>() < b.fail {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{} failed this request on purpose\n", b.revision),
        );
    }
    reply(StatusCode::OK, format!("hello from {}\n", b.revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_options_parse_and_bad_ones_are_named() {
        let b =
            Behaviour::parse("v2+fail=0.3+latency=50ms+slow-start=2s+fail-after=1500ms").unwrap();
        assert_eq!(b.fail, 0.3);
        assert_eq!(b.fail_after, Duration::from_millis(1500));
        assert_eq!(b.latency, Duration::from_millis(50));
        assert_eq!(b.slow_start, Duration::from_secs(2));
        assert_eq!(Behaviour::parse("v1").unwrap().fail, 0.0);
        assert!(Behaviour::parse("v2+fail=3")
            .unwrap_err()
            .contains("fail=3"));
        assert!(Behaviour::parse("v2+colour=red")
            .unwrap_err()
            .contains("colour"));
    }
}

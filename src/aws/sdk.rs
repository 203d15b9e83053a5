//! The SDK set-up every adapter shares: the configuration (timeouts, retries
//! left to the driver), the call counter, and how an SDK error becomes a
//! [`PortError`] the driver knows how to retry.

use crate::aws::pace::{is_throttling, Pacer};
use crate::ports::{ErrorKind, PortError};
use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// AWS API calls made, per operation (`DescribeAlarms`, `ModifyListener`, ...):
/// those AWS accepted, and apart from them those it answered with an error
/// (a conditional write that lost, a throttled call, a missing resource), so
/// that a summary shows what changed the cloud and what only tried to. Every
/// call goes through here, so the client-side rate limit sits here too: a
/// call takes a token of its family first ([`Pacer`]), and AWS's answer
/// tunes the family's rate.
#[derive(Debug, Default)]
pub struct ApiCalls {
    counts: Mutex<CallCounts>,
    pacer: Pacer,
}

/// What [`ApiCalls`] holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls AWS accepted, per operation.
    pub accepted: BTreeMap<&'static str, u64>,
    /// Calls AWS answered with an error, per `Operation:ErrorCode`.
    pub rejected: BTreeMap<String, u64>,
    /// Calls AWS throttled (among `rejected`).
    pub throttled: u64,
    /// Calls that waited for a token of the client-side rate limit, or were
    /// put off for one (tried again by the driver).
    pub paced: u64,
    /// Their waits in all, in milliseconds.
    pub paced_ms: u64,
}

impl CallCounts {
    /// Every call made, accepted or not.
    pub fn total(&self) -> u64 {
        self.accepted.values().sum::<u64>() + self.rejected.values().sum::<u64>()
    }

    /// Every operation called, accepted or not (what IAM must allow).
    pub fn operations(&self) -> std::collections::BTreeSet<String> {
        self.accepted
            .keys()
            .map(|op| op.to_string())
            .chain(
                self.rejected
                    .keys()
                    .map(|k| k.split(':').next().unwrap_or(k).to_string()),
            )
            .collect()
    }
}

impl ApiCalls {
    /// Take a token of `op`'s family, waiting briefly for one; `Err`: the
    /// call is put off, its error says for how long (see [`Pacer::take`]).
    pub async fn pace(&self, op: &'static str) -> Result<(), PortError> {
        self.pacer
            .take(op)
            .await
            .map_err(|wait| PortError::paced(op, wait.as_millis() as crate::model::Millis))
    }

    /// Count one call of `op` that AWS accepted.
    pub fn hit(&self, op: &'static str) {
        self.pacer.accepted(op);
        *self
            .counts
            .lock()
            .expect("call counter")
            .accepted
            .entry(op)
            .or_default() += 1;
    }

    /// Count one call of `op` that AWS answered with error `code`.
    pub fn reject(&self, op: &'static str, code: &str) {
        let mut counts = self.counts.lock().expect("call counter");
        *counts.rejected.entry(format!("{op}:{code}")).or_default() += 1;
        if is_throttling(code) {
            counts.throttled += 1;
            self.pacer.throttled(op);
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> CallCounts {
        let mut counts = self.counts.lock().expect("call counter").clone();
        (counts.paced, counts.paced_ms) = self.pacer.waited();
        counts
    }
}

/// The error code of a failed SDK call: the service's code, or what kind of
/// failure kept the call from an answer.
pub fn error_code<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::ServiceError(se) => se.err().code().unwrap_or("UnknownError").to_string(),
        SdkError::TimeoutError(_) => "Timeout".into(),
        SdkError::DispatchFailure(_) => "DispatchFailure".into(),
        SdkError::ResponseError(_) => "ResponseError".into(),
        _ => "ConstructionFailure".into(),
    }
}

/// The longest one attempt of an AWS call may take before it counts as a
/// transient failure (the driver then retries it, the gates read meanwhile).
pub const CALL_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The SDK configuration and the call counter, shared by every adapter.
#[derive(Debug, Clone)]
pub struct Aws {
    /// The loaded SDK configuration.
    pub sdk: aws_config::SdkConfig,
    /// Calls per operation.
    pub calls: Arc<ApiCalls>,
    /// Reads shared by every adapter built from this (a release's members):
    /// alarms, listeners and rules; `None`: each reads its own.
    pub shared: Option<Arc<crate::aws::shared::Shared>>,
}

impl Aws {
    /// The same credentials, settings and call counter in `region`,
    /// sharing no reads (a release's shared answers are of its own region).
    pub fn in_region(&self, region: &'static str) -> Aws {
        Aws {
            sdk: self
                .sdk
                .to_builder()
                .region(aws_config::Region::new(region))
                .build(),
            calls: self.calls.clone(),
            shared: None,
        }
    }

    /// Load the default credential chain, with an optional region and profile.
    pub async fn load(region: Option<String>, profile: Option<String>) -> Aws {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            // A call that hangs must not hold up the gates past a few polls:
            // a timed-out attempt is a transient failure the driver retries.
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(CALL_ATTEMPT_TIMEOUT)
                    .build(),
            );
        // teal's driver retries every call itself, with jitter, reading the
        // gates between attempts; the SDK's own retries would keep a
        // throttled call's backoff out of its sight. AWS_MAX_ATTEMPTS, when
        // set, still decides.
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() {
            loader = loader
                .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1));
        }
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r));
        }
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        Aws {
            sdk: loader.load().await,
            calls: Arc::default(),
            shared: None,
        }
    }

    /// Adapters built from this share their reads: an answer serves every
    /// member for `fresh`, the alarms' for `alarms` (see [`crate::aws::shared`]).
    pub fn sharing_reads(mut self, fresh: std::time::Duration, alarms: std::time::Duration) -> Aws {
        self.shared = Some(Arc::new(crate::aws::shared::Shared::new(fresh, alarms)));
        self
    }
}

/// Error codes that mean "try again later" (besides throttling's).
const TRANSIENT_CODES: &[&str] = &[
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
    "ServerException",
];

/// Classify an SDK error into a [`PortError`] for operation `op`.
pub fn port_error<E>(op: &'static str, e: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ErrorKind::Transient
        }
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            let status = se.raw().status().as_u16();
            if status >= 500
                || status == 429
                || TRANSIENT_CODES.contains(&code)
                || is_throttling(code)
            {
                ErrorKind::Transient
            } else if code.contains("NotFound") || code.starts_with("NoSuch") {
                ErrorKind::NotFound
            } else if code.contains("AccessDenied") || code.contains("Unauthorized") {
                ErrorKind::Denied
            } else {
                ErrorKind::Invalid
            }
        }
        _ => ErrorKind::Invalid,
    };
    let message = match e.as_service_error() {
        Some(se) => format!(
            "{}: {}",
            se.code().unwrap_or("error"),
            se.message().unwrap_or_default()
        ),
        None => DisplayErrorContext(&e).to_string(),
    };
    PortError::new(op, kind, message)
}

/// Shorthand: count a call and map its error.
#[macro_export]
#[doc(hidden)]
macro_rules! aws_call {
    ($calls:expr, $op:literal, $fut:expr) => {{
        // Put off by the rate limit: not sent, the driver tries it again.
        match $calls.pace($op).await {
            Err(e) => Err(e),
            Ok(()) => match $fut.await {
                Ok(v) => {
                    $calls.hit($op);
                    Ok(v)
                }
                Err(e) => {
                    $calls.reject($op, &$crate::aws::sdk::error_code(&e));
                    Err($crate::aws::sdk::port_error($op, e))
                }
            },
        }
    }};
}

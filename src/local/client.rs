//! The local provider's ports: a client of `teal local serve`'s admin API,
//! which talks to the daemon the way the AWS adapters talk to AWS.

use super::api;
use crate::config::LocalRuns;
use crate::engine::{Plan, Record};
use crate::model::{FleetStatus, GateReading, Green, Slot, SlotWeights};
use crate::ports::{Checks, ErrorKind, Fleet, Gate, Ledger, PortError, Router};
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// An HTTP client of the daemon's admin API.
#[derive(Clone)]
pub struct Admin {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// A rolling strategy's `max_percent`, sent with a rollout's start.
    max_percent: Option<u16>,
    /// What the instances run, when known (a site's build is checked).
    runs: Option<LocalRuns>,
}

impl Admin {
    /// A client of the admin API at `addr` (`127.0.0.1:8081`).
    pub fn new(addr: &str) -> Admin {
        Admin {
            base: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
            max_percent: None,
            runs: None,
        }
    }

    /// The same client, checking before a deployment what its instances
    /// run: a static site's build of the new revision must be there.
    pub fn with_runs(mut self, runs: LocalRuns) -> Admin {
        self.runs = Some(runs);
        self
    }

    /// The same client, starting rolling updates with this `max_percent`
    /// (instances replaced at once: see [`super::daemon::batch_size`]).
    pub fn with_max_percent(mut self, max_percent: Option<u16>) -> Admin {
        self.max_percent = max_percent;
        self
    }

    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, PortError> {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("a valid request");
        let resp = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .map_err(|_| {
                PortError::new(op, ErrorKind::Transient, "the daemon did not answer in 30s")
            })?
            .map_err(|e| {
                PortError::new(
                    op,
                    ErrorKind::Transient,
                    format!("no `teal local serve` answers on {}: {e}", self.base),
                )
            })?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| PortError::new(op, ErrorKind::Transient, e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            let kind = match status {
                StatusCode::CONFLICT => ErrorKind::Conflict,
                StatusCode::NOT_FOUND => ErrorKind::NotFound,
                s if s.is_server_error() => ErrorKind::Transient,
                _ => ErrorKind::Invalid,
            };
            return Err(PortError::new(
                op,
                kind,
                String::from_utf8_lossy(&bytes).trim().to_string(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| PortError::new(op, ErrorKind::Invalid, e.to_string()))
    }

    /// Every instance: slot, revision, port, health.
    pub async fn instances(&self) -> Result<Vec<api::InstanceInfo>, PortError> {
        self.call("local.instances", Method::GET, "/v1/instances", None)
            .await
    }

    /// Per-slot request counts.
    pub async fn stats(&self) -> Result<Vec<api::SlotStats>, PortError> {
        self.call("local.stats", Method::GET, "/v1/stats", None)
            .await
    }
}

#[async_trait]
impl Fleet for Admin {
    async fn status(&self, slot: Slot) -> Result<FleetStatus, PortError> {
        Ok(std::mem::take(&mut self.statuses().await?[slot.index()]))
    }

    async fn statuses(&self) -> Result<[FleetStatus; 2], PortError> {
        self.call("fleet.statuses", Method::GET, "/v1/fleets", None)
            .await
    }

    async fn provision(&self, slot: Slot, green: &Green, desired: u32) -> Result<(), PortError> {
        let body = serde_json::to_vec(&api::ProvisionRequest {
            revision: green.revision.clone(),
            desired,
        })
        .expect("serialisable");
        self.call::<FleetStatus>(
            "fleet.provision",
            Method::PUT,
            &format!("/v1/fleets/{slot}"),
            Some(body),
        )
        .await
        .map(|_| ())
    }

    async fn remove(&self, slot: Slot) -> Result<(), PortError> {
        self.call::<FleetStatus>(
            "fleet.remove",
            Method::DELETE,
            &format!("/v1/fleets/{slot}"),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn preflight(&self, _plan: &Plan, green: &Green) -> Checks {
        let mut problems = vec![];
        // A build that is missing or empty would start instances that exit
        // at once: said now, before any change.
        let site = self.runs.as_ref().and_then(|r| r.site_dir(&green.revision));
        if let Some(Err(e)) = site.map(|dir| crate::site::files::scan(&dir)) {
            problems.push(format!("fleet.site: green's build {e}"));
        }
        if let Err(e) = self.statuses().await {
            problems.push(format!(
                "{}; start it with `teal local serve --config FILE`",
                e.message
            ));
        }
        match problems.is_empty() {
            true => Checks::default(),
            false => Checks::problems(problems),
        }
    }
}

#[async_trait]
impl Router for Admin {
    async fn weights(&self) -> Result<SlotWeights, PortError> {
        self.call("router.weights", Method::GET, "/v1/weights", None)
            .await
    }

    async fn set_weights(&self, weights: SlotWeights) -> Result<(), PortError> {
        let body = serde_json::to_vec(&weights).expect("serialisable");
        self.call::<SlotWeights>("router.set_weights", Method::PUT, "/v1/weights", Some(body))
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Gate for Admin {
    async fn read(&self) -> Result<Vec<GateReading>, PortError> {
        self.call("gate.read", Method::GET, "/v1/gates", None).await
    }
}

#[async_trait]
impl Ledger for Admin {
    async fn load(&self) -> Result<Option<Record>, PortError> {
        self.call("ledger.load", Method::GET, "/v1/ledger", None)
            .await
    }

    async fn store(&self, record: &Record) -> Result<u64, PortError> {
        let body = serde_json::to_vec(record).expect("serialisable");
        self.call("ledger.store", Method::PUT, "/v1/ledger", Some(body))
            .await
    }
}

/// A rolling update in place: the daemon replaces the live slot's instances
/// a batch at a time (`PUT /v1/rollout`).
#[async_trait]
impl crate::ports::Rollout for Admin {
    async fn state(&self, green: &Green) -> Result<crate::model::RolloutState, PortError> {
        let body = serde_json::to_vec(&api::RolloutRequest {
            revision: green.revision.clone(),
            since: Some(green.since),
            max_percent: None,
        })
        .expect("serialisable");
        self.call(
            "rollout.state",
            Method::POST,
            "/v1/rollout/state",
            Some(body),
        )
        .await
    }

    async fn start(&self, green: &Green) -> Result<(), PortError> {
        let body = serde_json::to_vec(&api::RolloutRequest {
            revision: green.revision.clone(),
            since: Some(green.since),
            max_percent: self.max_percent,
        })
        .expect("serialisable");
        self.call::<String>("rollout.start", Method::PUT, "/v1/rollout", Some(body))
            .await
            .map(|_| ())
    }

    async fn revert(&self) -> Result<(), PortError> {
        self.call::<String>("rollout.revert", Method::POST, "/v1/rollout/revert", None)
            .await
            .map(|_| ())
    }

    async fn preflight(&self, _green: &Green) -> (Checks, Option<String>) {
        let live = async {
            let w = Router::weights(self).await?;
            let fleets = self.statuses().await?;
            Ok::<_, PortError>(w.full_slot().map(|s| fleets[s.index()].clone()))
        };
        match live.await {
            Ok(Some(f)) if f.exists => (Checks::default(), f.revision),
            Ok(_) => (
                Checks::problems(vec![
                    "a rolling update needs one slot with all traffic and a fleet".into(),
                ]),
                None,
            ),
            Err(e) => (
                Checks::problems(vec![format!(
                    "{}; start it with `teal local serve --config FILE`",
                    e.message
                )]),
                None,
            ),
        }
    }
}

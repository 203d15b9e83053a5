//! The admin API on loopback: weights, fleets, gates, the ledger with its
//! version check, stats, instances and the rolling update.

use super::*;

/// The deployment record, with optimistic concurrency.
#[derive(Debug, Default)]
pub(super) struct Ledger(Mutex<Option<Record>>);

impl Ledger {
    /// The record, if one was ever stored.
    fn load(&self) -> Option<Record> {
        self.0.lock().expect("ledger lock").clone()
    }

    /// Store `rec` if the stored version is still `rec.version` (0: none
    /// yet); the new version, or the current one when it is not.
    fn store(&self, mut rec: Record) -> Result<u64, u64> {
        let mut stored = self.0.lock().expect("ledger lock");
        let current = stored.as_ref().map_or(0, |r| r.version);
        if rec.version != current {
            return Err(current);
        }
        rec.version = current + 1;
        let version = rec.version;
        *stored = Some(rec);
        Ok(version)
    }
}

pub(super) fn text(status: StatusCode, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("a valid response")
}

pub(super) fn json<T: Serialize + ?Sized>(v: &T) -> Response<Body> {
    let body = serde_json::to_vec(v).expect("serialisable");
    Response::builder()
        .header("content-type", "application/json")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("a valid response")
}

pub(super) fn internal(e: std::io::Error) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

impl Daemon {
    pub(super) async fn admin(self: &Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let body = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let slot = |p: &str| match p {
            "a" => Some(Slot::A),
            "b" => Some(Slot::B),
            _ => None,
        };
        match (method, path.as_str()) {
            (Method::GET, "/v1/weights") => json(&*self.weights.read().expect("weights lock")),
            (Method::PUT, "/v1/weights") => match serde_json::from_slice::<SlotWeights>(&body) {
                Ok(w) if w.is_valid() => {
                    *self.weights.write().expect("weights lock") = w;
                    json(&w)
                }
                Ok(w) => text(StatusCode::BAD_REQUEST, &format!("invalid weights {w}")),
                Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
            },
            (Method::GET, "/v1/fleets") => json(&self.statuses()),
            (Method::GET, "/v1/instances") => json(&self.instances()),
            (Method::PUT, p) if p.starts_with("/v1/fleets/") => {
                let Some(s) = slot(&p["/v1/fleets/".len()..]) else {
                    return text(StatusCode::NOT_FOUND, "no such slot");
                };
                match serde_json::from_slice::<ProvisionRequest>(&body) {
                    Ok(r) => match self.provision(s, r).await {
                        Ok(()) => json(&self.statuses()[s.index()]),
                        Err((code, why)) => text(code, &why),
                    },
                    Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
                }
            }
            (Method::DELETE, p) if p.starts_with("/v1/fleets/") => {
                let Some(s) = slot(&p["/v1/fleets/".len()..]) else {
                    return text(StatusCode::NOT_FOUND, "no such slot");
                };
                self.remove(s).await;
                json(&self.statuses()[s.index()])
            }
            (Method::PUT, "/v1/rollout") => match serde_json::from_slice::<RolloutRequest>(&body) {
                Ok(r) => {
                    match self.start_rollout(r.revision, r.since, r.max_percent.unwrap_or(200)) {
                        Ok(()) => json(&"started"),
                        Err((code, why)) => text(code, &why),
                    }
                }
                Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
            },
            (Method::POST, "/v1/rollout/state") => {
                match serde_json::from_slice::<RolloutRequest>(&body) {
                    Ok(r) => json(&self.rollout_state(&r.revision, r.since)),
                    Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
                }
            }
            (Method::POST, "/v1/rollout/revert") => match self.revert_rollout() {
                Ok(()) => json(&"reverting"),
                Err((code, why)) => text(code, &why),
            },
            (Method::GET, "/v1/gates") => json(&self.gate_readings()),
            (Method::GET, "/v1/stats") => json(&self.stats()),
            (Method::POST, "/v1/samples") => {
                match serde_json::from_slice::<SamplesRequest>(&body) {
                    Ok(q) => json(&self.samples(&q)),
                    Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
                }
            }
            (Method::GET, "/v1/ledger") => json(&self.ledger.load()),
            (Method::PUT, "/v1/ledger") => match serde_json::from_slice::<Record>(&body) {
                Ok(rec) => {
                    let given = rec.version;
                    match self.ledger.store(rec) {
                        Ok(version) => json(&version),
                        Err(current) => text(
                            StatusCode::CONFLICT,
                            &format!("record is at version {current}, not {given}"),
                        ),
                    }
                }
                Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
            },
            _ => text(StatusCode::NOT_FOUND, "no such endpoint"),
        }
    }
}

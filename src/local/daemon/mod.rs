//! `teal local serve`: the local provider's long-lived half. One process
//! holds the weighted proxy, the instances of each slot, the live metric
//! gates and the ledger, and keeps serving between deployments; `teal
//! deploy`, `shift`, `status`, ... reach it through a small JSON admin API
//! on loopback, the way they reach AWS.

mod admin;
mod instances;
mod proxy;
mod rolling;

pub use super::api::{InstanceInfo, ProvisionRequest, RolloutRequest, SlotStats};
use admin::{internal, text};
use instances::{spawn, Fleet, Instance};
use proxy::accept;
pub use proxy::slot_for;
pub use rolling::batch_size;
use rolling::{RollJob, ROLL_DRAIN};

use super::api::{PeriodSample, SamplesRequest};
use super::loopback::free_ports;
use super::metrics::{Gates, Sample, Window};
use super::seconds::Seconds;
use crate::config::LocalGates;
use crate::engine::Record;
use crate::model::{FleetStatus, GateReading, Millis, Slot, SlotWeights};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What the daemon runs, from the config.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The instance command; `{port}` and `{revision}` are replaced.
    pub command: Vec<String>,
    /// Health path of every instance.
    pub health_path: String,
    /// Live metric gates, if configured.
    pub gates: Option<LocalGates>,
    /// Time between SIGTERM and SIGKILL when an instance is stopped.
    pub grace: Duration,
}

/// A body the proxy and the admin API can both answer with.
type Body = BoxBody<Bytes, hyper::Error>;

/// The daemon's state, shared by the proxy, the admin API and the health loop.
pub struct Daemon {
    cfg: DaemonConfig,
    weights: RwLock<SlotWeights>,
    fleets: Mutex<[Option<Fleet>; 2]>,
    windows: Mutex<[Window; 2]>,
    /// Per-second samples per slot, for canary analysis.
    seconds: Mutex<[Seconds; 2]>,
    gates: Mutex<Gates>,
    /// The proxy's own: which slot and instance the next request goes to.
    picker: proxy::Picker,
    /// The admin API's own: the deployment record.
    ledger: admin::Ledger,
    /// The rolling update in place, if one was asked for.
    rollout: Mutex<Option<RollJob>>,
}

/// The upstream connection pool of one proxy thread.
type Upstream = Client<HttpConnector, Body>;

impl Daemon {
    /// A daemon with nothing running and all weight on slot A.
    pub fn new(cfg: DaemonConfig) -> Arc<Daemon> {
        // Without gates only the request totals are kept.
        let kept = cfg.gates.map_or(0, |g| g.window_ms);
        Arc::new(Daemon {
            cfg,
            weights: RwLock::new(SlotWeights { a: 100, b: 0 }),
            fleets: Mutex::new([None, None]),
            windows: Mutex::new([Window::new(kept), Window::new(kept)]),
            seconds: Mutex::default(),
            gates: Mutex::new(Gates::default()),
            picker: proxy::Picker::default(),
            ledger: admin::Ledger::default(),
            rollout: Mutex::new(None),
        })
    }

    /// Bind the proxy and the admin API and serve both, with the health
    /// checks, until the process ends. Returns the bound addresses.
    pub async fn bind(
        self: &Arc<Daemon>,
        proxy: SocketAddr,
        admin: SocketAddr,
    ) -> std::io::Result<(SocketAddr, SocketAddr)> {
        // The admin address first: a second daemon stops there, before it
        // touches the proxy's port.
        let admin_l = tokio::net::TcpListener::bind(admin).await?;
        let proxy = self.serve_proxy(proxy)?;
        let addrs = (proxy, admin_l.local_addr()?);
        let d = self.clone();
        tokio::spawn(accept(admin_l, move |req| {
            let d = d.clone();
            async move { d.admin(req).await }
        }));
        let d = self.clone();
        tokio::spawn(async move { d.health_loop().await });
        Ok(addrs)
    }

    /// Stop every instance (SIGTERM, then SIGKILL after the grace period).
    pub async fn shutdown(&self) {
        for slot in Slot::BOTH {
            self.remove(slot).await;
        }
    }

    fn record(&self, slot: Slot, failed: bool, start: Instant) {
        let (at, latency_us) = (now_ms(), start.elapsed().as_micros() as u64);
        self.windows.lock().expect("windows lock")[slot.index()].push(Sample {
            at,
            failed,
            latency_us,
        });
        self.seconds.lock().expect("seconds lock")[slot.index()].push(at, failed, latency_us);
    }

    /// A new fleet in `slot`: what its predecessor did is not its record.
    fn restart_measures(&self, slot: Slot) {
        self.windows.lock().expect("windows lock")[slot.index()].restart();
        self.seconds.lock().expect("seconds lock")[slot.index()].restart();
    }

    /// Both slots' periods, as `POST /v1/samples` asks.
    fn samples(&self, q: &SamplesRequest) -> [Vec<PeriodSample>; 2] {
        let now = now_ms();
        let s = self.seconds.lock().expect("seconds lock");
        Slot::BOTH.map(|slot| s[slot.index()].periods(q.from, now, q.period_ms, &q.percentiles))
    }

    fn gate_readings(&self) -> Vec<GateReading> {
        let Some(g) = self.cfg.gates else {
            return vec![];
        };
        // The newest fleet is the candidate: judge the slot it runs in.
        let slot = {
            let fleets = self.fleets.lock().expect("fleets lock");
            Slot::BOTH
                .into_iter()
                .filter_map(|s| fleets[s.index()].as_ref().map(|f| (f.born, s)))
                .max()
                .map_or(Slot::A, |(_, s)| s)
        };
        let now = now_ms();
        let mut windows = self.windows.lock().expect("windows lock");
        for w in windows.iter_mut() {
            w.prune(now, g.window_ms);
        }
        self.gates
            .lock()
            .expect("gates lock")
            .read(&windows[slot.index()], &g, now)
    }

    fn stats(&self) -> Vec<SlotStats> {
        let w = *self.weights.read().expect("weights lock");
        let statuses = self.statuses();
        let windows = self.windows.lock().expect("windows lock");
        Slot::BOTH
            .map(|s| SlotStats {
                slot: s,
                revision: statuses[s.index()].revision.clone(),
                weight: w.get(s),
                requests: windows[s.index()].total,
                failed: windows[s.index()].failed_total,
            })
            .to_vec()
    }
}

fn now_ms() -> Millis {
    use crate::ports::Clock;
    crate::ports::SystemClock.now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_the_surge_max_percent_allows_and_at_least_one() {
        assert_eq!(batch_size(2, 200), 2);
        assert_eq!(batch_size(2, 150), 1);
        assert_eq!(batch_size(10, 150), 5);
        assert_eq!(
            batch_size(10, 125),
            2,
            "rounded down: never above max_percent"
        );
        assert_eq!(
            batch_size(3, 100),
            1,
            "no surge allowed: still one at a time"
        );
        assert_eq!(batch_size(1, 200), 1);
    }

    #[test]
    fn every_hundred_requests_split_exactly_by_weight() {
        for a in [0u8, 1, 10, 50, 90, 99, 100] {
            let w = SlotWeights { a, b: 100 - a };
            for start in [0usize, 7, 12_345] {
                let to_a = (start..start + 100)
                    .filter(|&n| slot_for(n, w) == Slot::A)
                    .count();
                assert_eq!(to_a, usize::from(a), "weights {w}, from request {start}");
            }
        }
        // Spread, not batched: a 10% canary gets one of every ten-ish, never a run of ten.
        let w = SlotWeights { a: 90, b: 10 };
        let longest_b_run = (0..100)
            .map(|n| (n..).take_while(|&m| slot_for(m, w) == Slot::B).count())
            .max()
            .unwrap();
        assert!(longest_b_run <= 2, "{longest_b_run}");
    }
}

//! `teal local serve`: the local provider's long-lived half. One process
//! holds the weighted proxy, the instances of each slot, the live metric
//! gates and the ledger, and keeps serving between deployments; `teal
//! deploy`, `shift`, `status`, ... reach it through a small JSON admin API
//! on loopback, the way they reach AWS.

use super::metrics::{Gates, Sample, Window};
use crate::config::LocalGates;
use crate::engine::Record;
use crate::model::{FleetStatus, GateReading, Millis, Slot, SlotWeights};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
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

struct Instance {
    /// The revision it runs (a rolling update mixes two in one slot).
    revision: String,
    port: u16,
    /// `127.0.0.1:port`, parsed once: the proxy puts it in every request's URI.
    authority: hyper::http::uri::Authority,
    child: tokio::process::Child,
    healthy: Arc<AtomicBool>,
}

struct Fleet {
    /// The revision its instances run, or are being rolled to.
    revision: String,
    desired: u32,
    instances: Vec<Instance>,
    /// When it was provisioned: the newest fleet is the one the gates judge.
    born: Instant,
}

/// The daemon's state, shared by the proxy, the admin API and the health loop.
pub struct Daemon {
    cfg: DaemonConfig,
    weights: RwLock<SlotWeights>,
    fleets: Mutex<[Option<Fleet>; 2]>,
    ledger: Mutex<Option<Record>>,
    windows: Mutex<[Window; 2]>,
    gates: Mutex<Gates>,
    /// Requests routed so far: picks the slot (see [`slot_for`]).
    routed: AtomicUsize,
    /// Round-robin over a slot's instances.
    next: AtomicUsize,
    /// The rolling update in place, if one was asked for.
    rollout: Mutex<Option<RollJob>>,
}

/// A rolling update of the live slot, a batch of instances at a time.
struct RollJob {
    slot: Slot,
    /// The start of the deployment that asked for it.
    since: Option<Millis>,
    /// The strategy's `max_percent` (see [`batch_size`]).
    max_percent: u16,
    /// The revision instances are replaced with.
    to: String,
    /// The revision they ran.
    from: String,
    /// This job puts `to` back after a rollout of `from` (a revert).
    reverting: bool,
    state: JobState,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum JobState {
    Running { done: u32, total: u32 },
    Done,
    Failed(String),
}

/// `PUT /v1/rollout` and `POST /v1/rollout/state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutRequest {
    /// The revision rolled out.
    pub revision: String,
    /// When the deployment rolling it out began: a job begun for another
    /// deployment (of the same revision, say) is not this one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Millis>,
    /// The strategy's `max_percent`: how many instances are replaced at once
    /// (the surge above the fleet's size, at least one). Start requests only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_percent: Option<u16>,
}

/// Instances replaced at once in a fleet of `total` under `max_percent`: the
/// surge it allows above the fleet's size, at least one (capacity never
/// drops below the fleet's size, so `min_healthy_percent` holds at 100).
pub fn batch_size(total: u32, max_percent: u16) -> u32 {
    (total * u32::from(max_percent.saturating_sub(100)) / 100).max(1)
}

/// How long a new instance may take to pass its health check in a rolling update.
const ROLL_HEALTHY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an instance taken out of routing keeps running for requests in flight.
const ROLL_DRAIN: Duration = Duration::from_millis(500);

/// The upstream connection pool of one proxy thread.
type Upstream = Client<HttpConnector, Body>;

/// Request counts of one slot, for `teal demo` and people.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotStats {
    /// The slot.
    pub slot: Slot,
    /// Its revision, if a fleet runs there.
    pub revision: Option<String>,
    /// Its weight.
    pub weight: u8,
    /// Requests proxied to it since the daemon started.
    pub requests: u64,
    /// Of which failed (5xx or no answer).
    pub failed: u64,
}

/// One instance, as `GET /v1/instances` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstanceInfo {
    /// The slot it serves.
    pub slot: Slot,
    /// The revision it runs.
    pub revision: String,
    /// Its loopback port.
    pub port: u16,
    /// Whether its last health check passed.
    pub healthy: bool,
}

/// `PUT /v1/fleets/{slot}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionRequest {
    /// The revision label, passed to the command as `{revision}`.
    pub revision: String,
    /// How many instances.
    pub desired: u32,
}

impl Daemon {
    /// A daemon with nothing running and all weight on slot A.
    pub fn new(cfg: DaemonConfig) -> Arc<Daemon> {
        // Without gates only the request totals are kept.
        let kept = cfg.gates.map_or(0, |g| g.window_ms);
        Arc::new(Daemon {
            cfg,
            weights: RwLock::new(SlotWeights { a: 100, b: 0 }),
            fleets: Mutex::new([None, None]),
            ledger: Mutex::new(None),
            windows: Mutex::new([Window::new(kept), Window::new(kept)]),
            gates: Mutex::new(Gates::default()),
            routed: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
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

    /// The proxy, nginx-style: one thread per core, each with its own
    /// listener on the same address (`SO_REUSEPORT`: the kernel spreads
    /// connections over them), its own single-threaded runtime and its own
    /// upstream pool. A request and its upstream call never leave the thread
    /// that accepted the connection, so no wake-up crosses cores; the shared
    /// state is the weights, the fleets and the gate windows. Measured in
    /// `benches/proxy.sh`: 1.45x the requests per second of one
    /// multi-threaded runtime (0.58x of nginx's throughput became 0.88x).
    fn serve_proxy(self: &Arc<Daemon>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        // SO_REUSEPORT would let a second daemon of the same user share the
        // port silently. A plain bind fails on any listener already there.
        // (Port 0 asks for any port: the probe picks it, the threads share it.)
        let probe = std::net::TcpListener::bind(addr)?;
        let bound = probe.local_addr()?;
        drop(probe);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        for i in 0..threads {
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.bind(bound)?;
            let listener = socket.listen(1024)?;
            let listener = listener.into_std()?;
            let d = self.clone();
            std::thread::Builder::new()
                .name(format!("teal-proxy-{i}"))
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime for a proxy thread");
                    runtime.block_on(async move {
                        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                            return;
                        };
                        let mut connector = HttpConnector::new();
                        connector.set_nodelay(true);
                        let upstream: Upstream = Client::builder(TokioExecutor::new())
                            .pool_idle_timeout(Duration::from_secs(30))
                            .build(connector);
                        accept(listener, move |req| {
                            let (d, upstream) = (d.clone(), upstream.clone());
                            async move { d.proxy(req, &upstream).await }
                        })
                        .await;
                    });
                })?;
        }
        Ok(bound)
    }

    /// Stop every instance (SIGTERM, then SIGKILL after the grace period).
    pub async fn shutdown(&self) {
        for slot in Slot::BOTH {
            self.remove(slot).await;
        }
    }

    // ---- the proxy ----

    fn pick(&self) -> Option<(Slot, hyper::http::uri::Authority)> {
        let w = *self.weights.read().expect("weights lock");
        let slot = slot_for(self.routed.fetch_add(1, Ordering::Relaxed), w);
        let fleets = self.fleets.lock().expect("fleets lock");
        let instances = &fleets[slot.index()].as_ref()?.instances;
        // Round-robin over the healthy instances, or over all of them when
        // none is healthy (better a try than a certain 502). No allocation:
        // this runs for every request.
        let healthy = |i: &&Instance| i.healthy.load(Ordering::Relaxed);
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let count = instances.iter().filter(healthy).count();
        let instance = if count > 0 {
            instances.iter().filter(healthy).nth(n % count)?
        } else {
            instances.get(n % instances.len().max(1))?
        };
        Some((slot, instance.authority.clone()))
    }

    async fn proxy(&self, req: Request<Incoming>, upstream: &Upstream) -> Response<Body> {
        let start = Instant::now();
        let (mut parts, body) = req.into_parts();
        // A request without a body can be tried again on a fresh connection
        // when a pooled one turns out closed; one with a body cannot.
        let replayable = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
            && parts
                .headers
                .get(hyper::header::CONTENT_LENGTH)
                .is_none_or(|v| v == "0");
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/"));
        let mut body = Some(body.boxed());
        for attempt in 0..2 {
            let Some((slot, authority)) = self.pick() else {
                return text(StatusCode::BAD_GATEWAY, "no instance takes traffic\n");
            };
            let last = attempt == 1 || !replayable;
            let b = match body.take() {
                Some(b) => b,
                None => Full::new(Bytes::new())
                    .map_err(|never| match never {})
                    .boxed(),
            };
            // The request as it came, to the instance's address: no text
            // formatting or parsing per request, headers moved on the last try.
            let mut uri = hyper::http::uri::Parts::default();
            uri.scheme = Some(hyper::http::uri::Scheme::HTTP);
            uri.authority = Some(authority.clone());
            uri.path_and_query = Some(path.clone());
            let mut out = Request::new(b);
            *out.method_mut() = parts.method.clone();
            *out.uri_mut() = hyper::Uri::from_parts(uri).expect("scheme, authority and path");
            *out.headers_mut() = if last {
                std::mem::take(&mut parts.headers)
            } else {
                parts.headers.clone()
            };
            match upstream.request(out).await {
                Ok(resp) => {
                    self.record(slot, resp.status().is_server_error(), start);
                    return resp.map(|b| b.boxed());
                }
                Err(e) if !last => {
                    tracing::debug!(error = %e, %authority, "upstream failed; trying once more");
                }
                Err(e) => {
                    self.record(slot, true, start);
                    return text(StatusCode::BAD_GATEWAY, &format!("upstream failed: {e}\n"));
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    fn record(&self, slot: Slot, failed: bool, start: Instant) {
        let mut w = self.windows.lock().expect("windows lock");
        w[slot.index()].push(Sample {
            at: now_ms(),
            failed,
            latency_us: start.elapsed().as_micros() as u64,
        });
    }

    // ---- fleets ----

    async fn provision(&self, slot: Slot, p: ProvisionRequest) -> Result<(), (StatusCode, String)> {
        {
            let fleets = self.fleets.lock().expect("fleets lock");
            if let Some(f) = &fleets[slot.index()] {
                return if f.revision == p.revision {
                    Ok(()) // idempotent
                } else {
                    Err((
                        StatusCode::CONFLICT,
                        format!("slot {slot} runs revision {}", f.revision),
                    ))
                };
            }
        }
        let mut instances = Vec::new();
        for _ in 0..p.desired {
            let port = free_port().map_err(internal)?;
            let child = spawn(&self.cfg.command, port, &p.revision, slot).map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("cannot start {:?}: {e}", self.cfg.command.first()),
                )
            })?;
            instances.push(Instance {
                revision: p.revision.clone(),
                port,
                authority: format!("127.0.0.1:{port}")
                    .parse()
                    .expect("a loopback authority"),
                child,
                healthy: Arc::new(AtomicBool::new(false)),
            });
        }
        // A new fleet starts with an empty window: a green after a rolled-back
        // one is judged on its own requests only.
        self.windows.lock().expect("windows lock")[slot.index()].restart();
        let mut fleets = self.fleets.lock().expect("fleets lock");
        fleets[slot.index()] = Some(Fleet {
            revision: p.revision,
            desired: p.desired,
            instances,
            born: Instant::now(),
        });
        Ok(())
    }

    async fn remove(&self, slot: Slot) {
        // Out of the routing table first, then stopped.
        let fleet = self.fleets.lock().expect("fleets lock")[slot.index()].take();
        let Some(fleet) = fleet else { return };
        let grace = self.cfg.grace;
        let mut stops = tokio::task::JoinSet::new();
        for mut i in fleet.instances {
            stops.spawn(async move {
                if let Some(pid) = i.child.id() {
                    // SAFETY: kill(2) on our own child with a valid signal.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                }
                if tokio::time::timeout(grace, i.child.wait()).await.is_err() {
                    let _ = i.child.kill().await;
                }
            });
        }
        while stops.join_next().await.is_some() {}
    }

    fn statuses(&self) -> [FleetStatus; 2] {
        let fleets = self.fleets.lock().expect("fleets lock");
        Slot::BOTH.map(|s| match &fleets[s.index()] {
            None => FleetStatus::absent(),
            Some(f) => FleetStatus {
                exists: true,
                revision: Some(f.revision.clone()),
                desired: f.desired,
                healthy: f
                    .instances
                    .iter()
                    .filter(|i| i.healthy.load(Ordering::Relaxed))
                    .count() as u32,
            },
        })
    }

    fn instances(&self) -> Vec<InstanceInfo> {
        let fleets = self.fleets.lock().expect("fleets lock");
        Slot::BOTH
            .into_iter()
            .filter_map(|s| fleets[s.index()].as_ref().map(|f| (s, f)))
            .flat_map(|(slot, f)| {
                f.instances.iter().map(move |i| InstanceInfo {
                    slot,
                    revision: i.revision.clone(),
                    port: i.port,
                    healthy: i.healthy.load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    async fn health_loop(&self) {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        loop {
            let checks: Vec<(u16, Arc<AtomicBool>)> = {
                let mut fleets = self.fleets.lock().expect("fleets lock");
                fleets
                    .iter_mut()
                    .flatten()
                    .flat_map(|f| f.instances.iter_mut())
                    .map(|i| {
                        // An instance that exited is unhealthy for good.
                        if matches!(i.child.try_wait(), Ok(Some(_))) {
                            i.healthy.store(false, Ordering::Relaxed);
                            (0, i.healthy.clone())
                        } else {
                            (i.port, i.healthy.clone())
                        }
                    })
                    .collect()
            };
            for (port, flag) in checks.into_iter().filter(|(p, _)| *p != 0) {
                let uri = format!("http://127.0.0.1:{port}{}", self.cfg.health_path);
                let req = Request::get(uri)
                    .body(Full::new(Bytes::new()))
                    .expect("a valid request");
                let ok = matches!(
                    tokio::time::timeout(Duration::from_secs(1), client.request(req)).await,
                    Ok(Ok(r)) if r.status().is_success()
                );
                flag.store(ok, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // ---- rolling updates ----

    /// Replace the live slot's instances with `revision`, a batch at a time.
    /// Idempotent: a job to the same revision is left alone.
    fn start_rollout(
        self: &Arc<Self>,
        revision: String,
        since: Option<Millis>,
        max_percent: u16,
    ) -> Result<(), (StatusCode, String)> {
        let mut job = self.rollout.lock().expect("rollout lock");
        if let Some(j) = job.as_ref() {
            if j.to == revision && !j.reverting && j.since == since {
                return Ok(());
            }
            if matches!(j.state, JobState::Running { .. }) {
                return Err((
                    StatusCode::CONFLICT,
                    format!("a rolling update to {} is running", j.to),
                ));
            }
        }
        let w = *self.weights.read().expect("weights lock");
        let slot = w.full_slot().ok_or_else(|| {
            (
                StatusCode::CONFLICT,
                format!("traffic is split ({w}): a rolling update needs one live slot"),
            )
        })?;
        let from = self.fleets.lock().expect("fleets lock")[slot.index()]
            .as_ref()
            .map(|f| f.revision.clone())
            .ok_or_else(|| (StatusCode::CONFLICT, format!("slot {slot} has no fleet")))?;
        // The gates judge the new revision's requests, not the old one's history.
        self.windows.lock().expect("windows lock")[slot.index()].restart();
        *job = Some(self.spawn_roll(slot, since, revision, from, false, max_percent));
        Ok(())
    }

    /// Put the previous revision back: stop the rollout, replace its instances.
    fn revert_rollout(self: &Arc<Self>) -> Result<(), (StatusCode, String)> {
        let mut job = self.rollout.lock().expect("rollout lock");
        let Some(j) = job.as_ref() else {
            return Err((StatusCode::CONFLICT, "no rolling update to revert".into()));
        };
        if j.reverting {
            return Ok(());
        }
        j.task.abort();
        let (slot, to, from) = (j.slot, j.from.clone(), j.to.clone());
        *job = Some(self.spawn_roll(slot, j.since, to, from, true, j.max_percent));
        Ok(())
    }

    fn spawn_roll(
        self: &Arc<Self>,
        slot: Slot,
        since: Option<Millis>,
        to: String,
        from: String,
        reverting: bool,
        max_percent: u16,
    ) -> RollJob {
        let d = self.clone();
        let target = to.clone();
        RollJob {
            slot,
            since,
            max_percent,
            to,
            from,
            reverting,
            state: JobState::Running { done: 0, total: 0 },
            task: tokio::spawn(async move {
                let result = d.roll(slot, &target, max_percent).await;
                if let Some(j) = d.rollout.lock().expect("rollout lock").as_mut() {
                    if j.to == target {
                        j.state = match result {
                            Ok(()) => JobState::Done,
                            Err(why) => JobState::Failed(why),
                        };
                    }
                }
            }),
        }
    }

    /// A batch at a time: start a batch of `to`, wait until every one is
    /// healthy, then take instances of another revision out of routing until
    /// the fleet is back at its size, let their requests finish, stop them.
    /// Capacity never drops below the fleet's size. Counting toward the size
    /// (not "one old for one new") is what makes a revert that interrupted a
    /// batch end with the fleet's size, not with the interrupted surge too.
    async fn roll(&self, slot: Slot, to: &str, max_percent: u16) -> Result<(), String> {
        loop {
            let (others, done, total, size) = {
                let fleets = self.fleets.lock().expect("fleets lock");
                let f = fleets[slot.index()].as_ref().ok_or("the fleet is gone")?;
                // Others not serving (an interrupted batch's) go first.
                let mut others: Vec<(bool, u16)> = f
                    .instances
                    .iter()
                    .filter(|i| i.revision != to)
                    .map(|i| (i.healthy.load(Ordering::Relaxed), i.port))
                    .collect();
                others.sort_by_key(|(healthy, _)| *healthy);
                let others: Vec<u16> = others.into_iter().map(|(_, port)| port).collect();
                let done = f.instances.iter().filter(|i| i.revision == to).count() as u32;
                (others, done, f.instances.len() as u32, f.desired)
            };
            if let Some(j) = self.rollout.lock().expect("rollout lock").as_mut() {
                j.state = JobState::Running {
                    done: done.min(size),
                    total: size,
                };
            }
            let need = size.saturating_sub(done);
            if need == 0 {
                // Every place taken by `to`: what is left of others is surplus.
                self.stop_instances(slot, &others).await;
                if let Some(f) = self.fleets.lock().expect("fleets lock")[slot.index()].as_mut() {
                    f.revision = to.to_string();
                }
                return Ok(());
            }
            let batch = batch_size(size, max_percent).min(need);
            let mut started = Vec::new();
            for _ in 0..batch {
                let port = free_port().map_err(|e| e.to_string())?;
                let child = spawn(&self.cfg.command, port, to, slot)
                    .map_err(|e| format!("cannot start {:?}: {e}", self.cfg.command.first()))?;
                let healthy = Arc::new(AtomicBool::new(false));
                if let Some(f) = self.fleets.lock().expect("fleets lock")[slot.index()].as_mut() {
                    f.instances.push(Instance {
                        revision: to.to_string(),
                        port,
                        authority: format!("127.0.0.1:{port}")
                            .parse()
                            .expect("a loopback authority"),
                        child,
                        healthy: healthy.clone(),
                    });
                }
                started.push((port, healthy));
            }
            let t0 = Instant::now();
            while !started.iter().all(|(_, h)| h.load(Ordering::Relaxed)) {
                if t0.elapsed() > ROLL_HEALTHY_TIMEOUT {
                    let ports: Vec<u16> = started.iter().map(|(p, _)| *p).collect();
                    self.stop_instances(slot, &ports).await;
                    return Err(format!(
                        "an instance of {to} did not pass its health check in {}s",
                        ROLL_HEALTHY_TIMEOUT.as_secs()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Back to the fleet's size: as many others out as there are above it.
            let excess = (total + batch).saturating_sub(size) as usize;
            self.stop_instances(slot, &others[..excess.min(others.len())])
                .await;
        }
    }

    /// Take instances out of routing, give their requests in flight time to
    /// finish, then stop them.
    async fn stop_instances(&self, slot: Slot, ports: &[u16]) {
        let instances: Vec<Instance> = {
            let mut fleets = self.fleets.lock().expect("fleets lock");
            let Some(f) = fleets[slot.index()].as_mut() else {
                return;
            };
            let (out, keep) = std::mem::take(&mut f.instances)
                .into_iter()
                .partition(|i| ports.contains(&i.port));
            f.instances = keep;
            out
        };
        if instances.is_empty() {
            return;
        }
        tokio::time::sleep(ROLL_DRAIN).await;
        for i in &instances {
            if let Some(pid) = i.child.id() {
                // SAFETY: kill(2) on our own child with a valid signal.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
        }
        for mut i in instances {
            if tokio::time::timeout(self.cfg.grace, i.child.wait())
                .await
                .is_err()
            {
                let _ = i.child.kill().await;
            }
        }
    }

    /// Where the rolling update to `revision` stands.
    fn rollout_state(&self, revision: &str, since: Option<Millis>) -> crate::model::RolloutState {
        use crate::model::RolloutState as R;
        let job = self.rollout.lock().expect("rollout lock");
        // Another deployment's job (of the same revision, say) is history.
        let Some(j) = job.as_ref().filter(|j| since.is_none() || j.since == since) else {
            return R::NotStarted;
        };
        let percent = |done: u32, total: u32| (total > 0).then(|| (done * 100 / total) as u8);
        match (&j.state, j.reverting) {
            (_, false) if j.to != revision => R::NotStarted,
            (_, true) if j.from != revision => R::NotStarted,
            (JobState::Running { done, total }, false) => R::InProgress {
                percent: percent(*done, *total),
                detail: format!("{done} of {total} instances run {}", j.to),
            },
            (JobState::Done, false) => R::Completed,
            (JobState::Running { done, total }, true) => R::RollingBack {
                detail: format!("{done} of {total} instances run {} again", j.to),
            },
            (JobState::Done, true) => R::RolledBack {
                detail: format!("every instance runs {} again", j.to),
            },
            (JobState::Failed(why), _) => R::Failed {
                detail: why.clone(),
            },
        }
    }

    // ---- gates ----

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

    // ---- the admin API ----

    async fn admin(self: &Arc<Self>, req: Request<Incoming>) -> Response<Body> {
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
            (Method::GET, "/v1/ledger") => json(&*self.ledger.lock().expect("ledger lock")),
            (Method::PUT, "/v1/ledger") => match serde_json::from_slice::<Record>(&body) {
                Ok(mut rec) => {
                    let mut stored = self.ledger.lock().expect("ledger lock");
                    let current = stored.as_ref().map_or(0, |r| r.version);
                    if rec.version != current {
                        return text(
                            StatusCode::CONFLICT,
                            &format!("record is at version {current}, not {}", rec.version),
                        );
                    }
                    rec.version = current + 1;
                    let version = rec.version;
                    *stored = Some(rec);
                    json(&version)
                }
                Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
            },
            _ => text(StatusCode::NOT_FOUND, "no such endpoint"),
        }
    }
}

/// The slot request number `n` goes to: exactly `w.a` of every 100
/// consecutive requests go to slot A, spread over the hundred (37 is coprime
/// to 100, so `n * 37 % 100` visits 0..100 once per hundred, scrambled).
/// Exact where a random draw is only right on average, and no RNG per request.
pub fn slot_for(n: usize, w: SlotWeights) -> Slot {
    if (n % 100 * 37 % 100) < usize::from(w.a) {
        Slot::A
    } else {
        Slot::B
    }
}

/// Accept connections forever, serving each with `handle`.
async fn accept<F, Fut>(listener: tokio::net::TcpListener, handle: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handle = handle.clone();
                async move { Ok::<_, Infallible>(handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
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

fn json<T: Serialize + ?Sized>(v: &T) -> Response<Body> {
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

fn internal(e: std::io::Error) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn now_ms() -> Millis {
    use crate::ports::Clock;
    crate::ports::SystemClock.now()
}

/// A free loopback port (bound, then released for the instance to take).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Start one instance. It dies with the daemon: the kernel sends it SIGTERM
/// when the daemon's thread exits (PR_SET_PDEATHSIG), even on SIGKILL.
fn spawn(
    command: &[String],
    port: u16,
    revision: &str,
    slot: Slot,
) -> std::io::Result<tokio::process::Child> {
    let fill = |s: &String| {
        s.replace("{port}", &port.to_string())
            .replace("{revision}", revision)
    };
    let (program, args) = command
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let mut cmd = tokio::process::Command::new(fill(program));
    cmd.args(args.iter().map(fill))
        .env("TEAL_PORT", port.to_string())
        .env("TEAL_REVISION", revision)
        .env("TEAL_SLOT", slot.to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
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

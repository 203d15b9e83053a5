//! The weighted proxy: one listener and single-threaded runtime per core,
//! each request to the slot its position picks ([`slot_for`]).

use super::*;

/// Which slot and instance the next request goes to.
#[derive(Debug, Default)]
pub(super) struct Picker {
    /// Requests routed so far: picks the slot (see [`slot_for`]).
    routed: AtomicUsize,
    /// Round-robin over a slot's instances.
    next: AtomicUsize,
}

/// Accept connections forever, serving each with `handle`.
pub(super) async fn accept<F, Fut>(listener: tokio::net::TcpListener, handle: F)
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

impl Daemon {
    /// The proxy, nginx-style: one thread per core, each with its own
    /// listener on the same address (`SO_REUSEPORT`: the kernel spreads
    /// connections over them), its own single-threaded runtime and its own
    /// upstream pool. A request and its upstream call never leave the thread
    /// that accepted the connection, so no wake-up crosses cores; the shared
    /// state is the weights, the fleets and the gate windows. Measured in
    /// `benches/proxy.sh`: 1.45x the requests per second of one
    /// multi-threaded runtime (0.58x of nginx's throughput became 0.88x).
    pub(super) fn serve_proxy(self: &Arc<Daemon>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
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

    pub(super) fn pick(&self) -> Option<(Slot, hyper::http::uri::Authority)> {
        let w = *self.weights.read().expect("weights lock");
        let slot = slot_for(self.picker.routed.fetch_add(1, Ordering::Relaxed), w);
        let fleets = self.fleets.lock().expect("fleets lock");
        let instances = &fleets[slot.index()].as_ref()?.instances;
        // Round-robin over the healthy instances, or over all of them when
        // none is healthy (better a try than a certain 502). No allocation:
        // this runs for every request.
        let healthy = |i: &&Instance| i.healthy.load(Ordering::Relaxed);
        let n = self.picker.next.fetch_add(1, Ordering::Relaxed);
        let count = instances.iter().filter(healthy).count();
        let instance = if count > 0 {
            instances.iter().filter(healthy).nth(n % count)?
        } else {
            instances.get(n % instances.len().max(1))?
        };
        Some((slot, instance.authority.clone()))
    }

    pub(super) async fn proxy(
        &self,
        req: Request<Incoming>,
        upstream: &Upstream,
    ) -> Response<Body> {
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
}

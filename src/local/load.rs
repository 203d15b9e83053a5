//! A small load generator for `teal demo` and the end-to-end tests: clients
//! that count every answer and every connection error they see.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A load generator: `n` clients sending GET / through the proxy back to back,
/// each request on a pooled keep-alive connection, 5ms apart.
pub struct Load {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    counts: Arc<[AtomicU64; 4]>,
}

/// What the clients saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Requests sent.
    pub sent: u64,
    /// 2xx answers.
    pub ok: u64,
    /// Other answers (5xx, and 404s: a missing asset fails a page too).
    pub failed: u64,
    /// No answer.
    pub errors: u64,
}

impl Load {
    /// Start `n` clients sending `GET /` to `proxy` back to back.
    pub fn start(proxy: std::net::SocketAddr, n: usize) -> Load {
        Load::start_paths(proxy, n, &["/"])
    }

    /// Start `n` clients each asking for `paths` in turn, over and over: a
    /// page and the assets it names, as a browser loads them.
    pub fn start_paths(proxy: std::net::SocketAddr, n: usize, paths: &[&str]) -> Load {
        use http_body_util::{BodyExt, Empty};
        let uris: Arc<[hyper::Uri]> = paths
            .iter()
            .map(|p| format!("http://{proxy}{p}").parse().expect("a uri"))
            .collect();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
        let client: hyper_util::client::legacy::Client<_, Empty<bytes::Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let tasks = (0..n)
            .map(|_| {
                let (client, counts, rx) = (client.clone(), counts.clone(), rx.clone());
                let uris = uris.clone();
                tokio::spawn(async move {
                    for uri in uris.iter().cycle() {
                        if *rx.borrow() {
                            break;
                        }
                        let uri = uri.clone();
                        counts[0].fetch_add(1, Ordering::Relaxed);
                        let slot = match client.get(uri).await {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.into_body().collect().await;
                                1
                            }
                            Ok(r) => {
                                let _ = r.into_body().collect().await;
                                2
                            }
                            Err(_) => 3,
                        };
                        counts[slot].fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        Load {
            stop,
            tasks,
            counts,
        }
    }

    /// What the clients saw so far; they keep going.
    pub fn counts(&self) -> Counts {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        Counts {
            sent: c(0),
            ok: c(1),
            failed: c(2),
            errors: c(3),
        }
    }

    /// Stop the clients and count what they saw.
    pub async fn stop(mut self) -> Counts {
        let _ = self.stop.send(true);
        for t in &mut self.tasks {
            let _ = t.await;
        }
        self.counts()
    }
}

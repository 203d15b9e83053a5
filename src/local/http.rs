//! The serving loop the local provider's instances share (the demo app, a
//! static site's build): loopback only, one task per connection, and on
//! SIGTERM or SIGINT stop accepting, let the requests in flight finish, and
//! return, as an ECS task or an instance behind a draining target should.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

/// Longest wait for the requests in flight after a signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Serve `answer` on 127.0.0.1:`port` until SIGTERM or SIGINT, then drain.
pub async fn serve_until_signal<F, Fut>(port: u16, answer: F) -> std::io::Result<()>
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    use tokio::signal::unix::{signal, SignalKind};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let answer = answer.clone();
        let service = hyper::service::service_fn(move |req| {
            let answer = answer.clone();
            async move { Ok::<_, Infallible>(answer(req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    // In-flight requests finish; idle keep-alive connections close.
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
    Ok(())
}

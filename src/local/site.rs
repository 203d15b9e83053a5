//! One build of a static site over HTTP: the local provider's instance of
//! a site (`teal site serve`), answering as the S3 origin behind CloudFront
//! would: each file with its content type and cache headers, `/` and every
//! directory as its `index.html`, anything else a 404.

use crate::site::files::{cache_control, content_type};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// What one instance serves.
#[derive(Debug, Clone)]
pub struct Site {
    /// The build directory.
    pub root: PathBuf,
    /// The revision, in an `x-revision` header of every answer.
    pub revision: String,
    /// Answers 200 while the instance runs.
    pub health_path: String,
}

/// Serve `site` on 127.0.0.1:`port` until SIGTERM or SIGINT, then drain.
/// The build is checked first ([`crate::site::files::scan`]): an instance of a
/// missing or empty build exits at once instead of answering 404s.
pub async fn serve(port: u16, site: Site) -> std::io::Result<()> {
    crate::site::files::scan(&site.root).map_err(std::io::Error::other)?;
    let site = Arc::new(site);
    super::http::serve_until_signal(port, move |req| {
        let site = site.clone();
        async move { answer(&site, &req).await }
    })
    .await
}

/// The answer to `req`.
pub async fn answer<B>(site: &Site, req: &Request<B>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode| {
        Response::builder()
            .status(status)
            .header("x-revision", site.revision.as_str())
    };
    let text = |status: StatusCode, body: &str| {
        reply(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a valid response")
    };
    let path = req.uri().path();
    if path == site.health_path {
        return text(StatusCode::OK, "ok\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD\n");
    }
    let Some(rel) = build_path(path) else {
        return text(StatusCode::BAD_REQUEST, "bad path\n");
    };
    let file = site.root.join(&rel);
    let (file, rel) = match tokio::fs::metadata(&file).await {
        Ok(m) if m.is_dir() => (file.join("index.html"), rel.join("index.html")),
        _ => (file, rel),
    };
    match tokio::fs::read(&file).await {
        Ok(body) => {
            let name = rel.to_string_lossy().replace('\\', "/");
            let body = match req.method() == Method::HEAD {
                true => Bytes::new(),
                false => Bytes::from(body),
            };
            reply(StatusCode::OK)
                .header("content-type", content_type(&name))
                .header("cache-control", cache_control(&name))
                .body(Full::new(body))
                .expect("a valid response")
        }
        Err(_) => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// A request path as a path in the build, `None` if it would leave it
/// (`..`) or is not valid percent-encoded UTF-8.
fn build_path(path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path)?;
    let mut rel = PathBuf::new();
    for c in Path::new(decoded.trim_start_matches('/')).components() {
        match c {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(rel)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> (tempfile::TempDir, Site) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("assets")).unwrap();
        std::fs::create_dir_all(dir.path().join("about")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<h1>v1</h1>").unwrap();
        std::fs::write(dir.path().join("about/index.html"), "about").unwrap();
        std::fs::write(dir.path().join("assets/app.1a2b3c4d.js"), "1;").unwrap();
        let site = Site {
            root: dir.path().to_path_buf(),
            revision: "v1".into(),
            health_path: "/healthz".into(),
        };
        (dir, site)
    }

    async fn get(site: &Site, path: &str) -> Response<Full<Bytes>> {
        let req = Request::get(path).body(()).unwrap();
        answer(site, &req).await
    }

    #[tokio::test]
    async fn files_are_served_with_their_type_and_cache_policy() {
        let (_dir, site) = site();
        let r = get(&site, "/").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-cache");
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(r.headers()["x-revision"], "v1");
        let r = get(&site, "/assets/app.1a2b3c4d.js").await;
        assert_eq!(
            r.headers()["cache-control"],
            crate::site::files::HASHED_CACHE
        );
        assert_eq!(get(&site, "/about/").await.status(), 200);
        assert_eq!(get(&site, "/about").await.status(), 200);
        assert_eq!(get(&site, "/healthz").await.status(), 200);
        assert_eq!(get(&site, "/assets/app.5e6f7a8b.js").await.status(), 404);
        assert_eq!(get(&site, "/../etc/passwd").await.status(), 400);
        assert_eq!(get(&site, "/assets/%2e%2e/%2e%2e/x").await.status(), 400);
    }
}

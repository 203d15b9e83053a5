//! A static site on the local provider, end to end: each revision a build
//! directory (a copy of `examples/static-local/builds`), served by `teal site
//! serve` instances behind teal's proxy, `teal site check` as the
//! `before_traffic` hook, and clients that load v1's page and the assets it
//! names throughout, as the browsers of users who opened the site before
//! the deployment do.

#[allow(dead_code)]
#[path = "support/local.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{canary, Local, TEAL};
use teal::local::load::Load;

/// v1's page and what it names: what an open tab keeps asking for.
const V1_PAGE: [&str; 3] = ["/", "/assets/app.1f2e3d4c.js", "/assets/style.5a6b7c8d.css"];

/// A copy of the example's builds, plus an empty one (`empty`).
fn builds() -> (tempfile::TempDir, PathBuf) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let to = to.join(e.file_name());
            match e.file_type().unwrap().is_dir() {
                true => copy(&e.path(), &to),
                false => {
                    std::fs::copy(e.path(), to).unwrap();
                }
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let builds = dir.path().join("builds");
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/static-local/builds"),
        &builds,
    );
    std::fs::create_dir_all(builds.join("empty")).unwrap();
    (dir, builds)
}

/// The daemon serving v1 of the site in `builds`, the check as a hook.
async fn site(builds: &Path) -> Local {
    let b = builds.display();
    Local::start_with(
        &format!("site = \"{b}/{{revision}}\""),
        &format!(
            "[hooks]\nbefore_traffic = '{TEAL} site check --old {b}/$TEAL_BLUE_REVISION --new {b}/$TEAL_REVISION'"
        ),
        &canary("3s"),
    )
    .await
}

/// GET `path` through the proxy: status and headers (lower-cased names).
async fn get(l: &Local, path: &str) -> (u16, Vec<(String, String)>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(l.proxy).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: site\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let head = raw.split("\r\n\r\n").next().unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_carries_the_old_assets_succeeds_under_load_with_zero_failed_requests() {
    let (_dir, builds) = builds();
    let l = site(&builds).await;
    let load = Load::start_paths(l.proxy, 4, &V1_PAGE);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stdout = l.run(&["deploy", "--revision", "v2"], 0).await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = load.stop().await;
    assert!(stdout.contains("outcome: Succeeded"), "{stdout}");
    // v1's open pages kept loading, from v1 and then from v2: no 404, no 5xx.
    assert!(c.sent > 200, "the load ran ({c:?})");
    assert_eq!((c.failed, c.errors, c.ok), (0, 0, c.sent), "{c:?}");
    let stats = l.per_revision().await;
    assert!(
        stats
            .iter()
            .any(|s| s.0.as_deref() == Some("v2") && s.1 > 0),
        "v2 served: {stats:?}"
    );
    // Served as an S3 origin would: the page revalidated, hashed assets kept.
    let (status, h) = get(&l, "/").await;
    assert_eq!(
        (
            status,
            header(&h, "x-revision"),
            header(&h, "cache-control")
        ),
        (200, "v2", "no-cache")
    );
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    let (status, h) = get(&l, "/assets/app.9a8b7c6d.js").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&h, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&h, "content-type"), "text/javascript; charset=utf-8");
    assert_eq!(get(&l, "/assets/nope.js").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_missing_an_asset_the_old_page_names_is_stopped_before_any_traffic() {
    let (_dir, builds) = builds();
    let l = site(&builds).await;

    let stdout = l.run(&["deploy", "--revision", "v3"], 3).await;

    assert!(
        stdout.contains("the before-traffic hook failed")
            && stdout.contains("assets/app.1f2e3d4c.js"),
        "the hook names the missing file: {stdout}"
    );
    let stats = l.per_revision().await;
    assert!(
        !stats
            .iter()
            .any(|s| s.0.as_deref() == Some("v3") && s.1 > 0),
        "v3 got requests: {stats:?}"
    );
    assert_eq!(header(&get(&l, "/").await.1, "x-revision"), "v1");
    // The same check by hand says what to do.
    let out = std::process::Command::new(TEAL)
        .args(["site", "check", "--old"])
        .arg(builds.join("v1"))
        .arg("--new")
        .arg(builds.join("v3"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("lacks 1 file(s)") && text.contains("version skew"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_empty_build_is_refused_before_any_change() {
    let (_dir, builds) = builds();
    let l = site(&builds).await;
    for (revision, said) in [("v9", "no such directory"), ("empty", "no files in it")] {
        let out = l
            .teal(&["deploy", "--revision", revision])
            .output()
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(
            text.contains("fleet.site") && text.contains(revision) && text.contains(said),
            "{text}"
        );
        // Nothing started: blue alone, all traffic.
        let stats = l.per_revision().await;
        assert_eq!(stats[1].0, None, "green started: {stats:?}");
        assert_eq!(header(&get(&l, "/").await.1, "x-revision"), "v1");
    }
}

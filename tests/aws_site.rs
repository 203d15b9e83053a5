//! `teal site publish` against moto's S3: real uploads, listings and
//! headers, read back with the SDK, as a CodeBuild stage would run it.

#[path = "support/aws.rs"]
mod support;

use std::path::Path;
use support::*;

const BUILDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/static-local/builds");

async fn bucket(s3: &aws_sdk_s3::Client) -> String {
    let name = unique("site").to_lowercase();
    s3.create_bucket().bucket(&name).send().await.unwrap();
    name
}

/// `teal site publish ... --output json`, exit `code`; its JSON when 0.
async fn publish(m: &Moto, args: &[&str], code: i32) -> (serde_json::Value, String) {
    let mut all = vec!["--output", "json", "site", "publish"];
    all.extend_from_slice(args);
    let (stdout, stderr) = run_teal(m, &all, code).await;
    let json = match code {
        0 => serde_json::from_str(&stdout).expect("one JSON object"),
        _ => serde_json::Value::Null,
    };
    (json, format!("{stdout}{stderr}"))
}

/// `publish`'s arguments for `dir` as `revision` to `to`, then `extra`.
async fn publish_to(
    m: &Moto,
    dir: &str,
    to: &str,
    revision: &str,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec!["--dir", dir, "--to", to, "--revision", revision];
    args.extend_from_slice(extra);
    publish(m, &args, 0).await.0
}

#[tokio::test]
async fn a_build_is_uploaded_with_its_headers_once_and_blues_assets_are_carried() {
    let Some(m) = moto() else { return };
    let s3 = s3(&sdk(&m).await);
    let b = bucket(&s3).await;
    let to = format!("s3://{b}/site");
    let v1 = format!("{BUILDS}/v1");

    let out = publish_to(&m, &v1, &to, "v1", &[]).await;
    assert_eq!(out["published"]["uploaded"].as_array().unwrap().len(), 4);
    let mut listed = keys(&s3, &b, "site/v1/").await;
    listed.sort();
    assert_eq!(
        listed,
        [
            "site/v1/assets/app.1f2e3d4c.js",
            "site/v1/assets/style.5a6b7c8d.css",
            "site/v1/index.html",
            "site/v1/robots.txt"
        ]
    );
    // The headers a CDN caches by, as S3 will serve them.
    for (key, content_type, cache) in [
        ("site/v1/index.html", "text/html", "no-cache"),
        (
            "site/v1/assets/app.1f2e3d4c.js",
            "javascript",
            "public, max-age=31536000, immutable",
        ),
        ("site/v1/robots.txt", "text/plain", "public, max-age=300"),
    ] {
        let head = s3.head_object().bucket(&b).key(key).send().await.unwrap();
        assert!(
            head.content_type()
                .unwrap_or_default()
                .contains(content_type),
            "{key}: {:?}",
            head.content_type()
        );
        assert_eq!(head.cache_control(), Some(cache), "{key}");
    }
    let body = s3
        .get_object()
        .bucket(&b)
        .key("site/v1/index.html")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(
        &body[..],
        &std::fs::read(format!("{v1}/index.html")).unwrap()[..]
    );

    // Again: nothing uploaded, everything found there.
    let out = publish_to(&m, &v1, &to, "v1", &[]).await;
    assert_eq!(out["published"]["uploaded"], serde_json::json!([]));
    assert_eq!(out["published"]["skipped"], 4);

    // A file changed under the same name is uploaded again, alone.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(Path::new(&v1), dir.path());
    std::fs::write(
        dir.path().join("robots.txt"),
        "User-agent: *\nDisallow: /\n",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let out = publish_to(&m, d, &to, "v1", &[]).await;
    assert_eq!(
        out["published"]["uploaded"],
        serde_json::json!(["robots.txt"])
    );

    // v3's build lacks the bundle v1's page loads: carried from v1,
    // server-side, with its headers; v1's CSS is in v3's build already.
    let v3 = format!("{BUILDS}/v3");
    let out = publish_to(&m, &v3, &to, "v3", &["--carry-from", "v1"]).await;
    assert_eq!(
        out["carried"],
        serde_json::json!(["assets/app.1f2e3d4c.js"])
    );
    let head = s3
        .head_object()
        .bucket(&b)
        .key("site/v3/assets/app.1f2e3d4c.js")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.cache_control(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        head.content_length(),
        Some(
            std::fs::metadata(format!("{v1}/assets/app.1f2e3d4c.js"))
                .unwrap()
                .len() as i64
        )
    );
}

#[tokio::test]
async fn old_revisions_are_pruned_past_the_count_but_never_blue_or_green() {
    let Some(m) = moto() else { return };
    let s3 = s3(&sdk(&m).await);
    let b = bucket(&s3).await;
    let to = format!("s3://{b}/site");
    for v in ["v1", "v2"] {
        let dir = format!("{BUILDS}/{v}");
        publish_to(&m, &dir, &to, v, &[]).await;
    }
    // v3 with blue = v1 (older than v2), keeping one: v3 is the newest and
    // v1 is protected; v2 goes.
    let dir = format!("{BUILDS}/v3");
    let out = publish_to(&m, &dir, &to, "v3", &["--carry-from", "v1", "--keep", "1"]).await;
    assert_eq!(out["pruned"]["deleted"], serde_json::json!(["v2"]));
    // (Newest first, but S3's times are to the second: the order is not asserted.)
    let mut kept: Vec<&str> = out["pruned"]["kept"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    kept.sort();
    assert_eq!(kept, ["v1", "v3"]);
    assert!(keys(&s3, &b, "site/v2/").await.is_empty());
    assert_eq!(keys(&s3, &b, "site/v1/").await.len(), 4);
    assert_eq!(keys(&s3, &b, "site/v3/").await.len(), 5);
}

#[tokio::test]
async fn bad_input_is_exit_2_naming_it_before_any_write() {
    let Some(m) = moto() else { return };
    let s3 = s3(&sdk(&m).await);
    let b = bucket(&s3).await;
    let to = format!("s3://{b}/site");
    let v1 = format!("{BUILDS}/v1");
    let empty = tempfile::tempdir().unwrap();
    let empty = empty.path().to_str().unwrap().to_string();
    let missing_bucket = format!("s3://{}/site", unique("nobucket").to_lowercase());
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--dir", "/no/such/dist", "--to", &to, "--revision", "v1"],
            vec!["--dir", "/no/such/dist", "no such directory"],
        ),
        (
            vec!["--dir", &empty, "--to", &to, "--revision", "v1"],
            vec!["--dir", "no files"],
        ),
        (
            vec!["--dir", &v1, "--to", &missing_bucket, "--revision", "v1"],
            vec![
                "no such bucket",
                &missing_bucket[5..missing_bucket.len() - 5],
            ],
        ),
        (
            vec!["--dir", &v1, "--to", "bucket/site", "--revision", "v1"],
            vec!["--to", "s3://BUCKET/PREFIX"],
        ),
        (
            vec!["--dir", &v1, "--to", &to, "--revision", "v1/../x"],
            vec!["--revision", "one prefix"],
        ),
        (
            vec![
                "--dir",
                &v1,
                "--to",
                &to,
                "--revision",
                "v2",
                "--carry-from",
                "v0",
            ],
            vec!["--carry-from", "v0", "no such revision"],
        ),
        (
            vec!["--dir", &v1, "--to", &to, "--revision", "v2", "--keep", "0"],
            vec!["--keep"],
        ),
    ];
    for (args, says) in cases {
        let (_, out) = publish(&m, &args, 2).await;
        for s in says {
            assert!(out.contains(s), "{args:?}: {s:?} not in:\n{out}");
        }
        assert!(keys(&s3, &b, "").await.is_empty(), "{args:?} wrote");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let target = to.join(e.path().strip_prefix(from).unwrap());
        match e.file_type().is_dir() {
            true => std::fs::create_dir_all(&target).unwrap(),
            false => {
                std::fs::copy(e.path(), &target).unwrap();
            }
        }
    }
}

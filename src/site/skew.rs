//! Version skew: the assets a browser that loaded blue's `index.html` goes
//! on asking for once green serves the site.
//!
//! With content-hashed names, every build names new assets; a user whose
//! page came from blue still loads blue's (`app.11111111.js`, and the chunks
//! it loads lazily) after the switch. If green's build lacks them, that user
//! gets 404s and a broken page, and no 5xx gate sees it. So a build should
//! carry the previous build's assets beside its own (bundlers' output
//! directories are usually cleaned; copy the old assets back, or deploy from
//! a store that keeps them), and [`missing`], run as a `before-traffic`
//! hook (`teal site check`), stops a build that does not, before any user
//! meets it.

use super::files::{scan, SiteError};
use std::path::Path;
use std::sync::LazyLock;

/// `src="..."` and `href="..."` attribute values, quoted either way.
static ATTRIBUTE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"(?i)\b(?:src|href)\s*=\s*(?:"([^"]*)"|'([^']*)')"#)
        .expect("a valid pattern")
});

/// The files of the same site that `html` (the build's top `index.html`)
/// references through `src` and `href`, as paths in the build (`/a/b.js`,
/// `./a/b.js` and `a/b.js` are all `a/b.js`), sorted, each once. Other
/// sites (`https:`, `//cdn`), `data:`, `mailto:` and fragments are left
/// out, as are queries and fragments of what is kept.
pub fn references(html: &str) -> Vec<String> {
    let mut found: Vec<String> = ATTRIBUTE
        .captures_iter(html)
        .filter_map(|c| c.get(1).or_else(|| c.get(2)))
        .filter_map(|m| local_path(m.as_str()))
        .collect();
    found.sort();
    found.dedup();
    found
}

fn local_path(url: &str) -> Option<String> {
    let url = url.trim();
    let has_scheme = url
        .split_once(':')
        .is_some_and(|(scheme, _)| !scheme.is_empty() && !scheme.contains('/'));
    if url.is_empty() || url.starts_with('#') || url.starts_with("//") || has_scheme {
        return None;
    }
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    // A directory (`/`, `/about/`) is its index, served by the site itself.
    (!parts.is_empty() && !path.ends_with('/')).then(|| parts.join("/"))
}

/// The files `old`'s `index.html` references that `new` lacks, sorted. An
/// error names a build directory that cannot be read (missing, empty, no
/// `index.html`).
pub fn missing(old: &Path, new: &Path) -> Result<Vec<String>, SiteError> {
    scan(old)?;
    let present: std::collections::BTreeSet<String> =
        scan(new)?.into_iter().map(|f| f.path).collect();
    let index = old.join("index.html");
    let html = std::fs::read_to_string(&index).map_err(|e| SiteError::Io(index, e))?;
    Ok(references(&html)
        .into_iter()
        .filter(|r| !present.contains(r))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_the_same_sites_files_as_build_paths() {
        let html = r##"<!doctype html>
<html><head>
  <link rel="stylesheet" href="/assets/style.5e6f7a8b.css">
  <link rel="icon" href='favicon.ico'>
  <link rel="preconnect" href="https://fonts.example.com">
  <script type="module" SRC="./assets/app.11111111.js?v=1#x"></script>
  <script src="//cdn.example.com/lib.js"></script>
</head><body>
  <a href="#top">top</a> <a href="/about/">about</a> <a href="mailto:a@b.c">mail</a>
  <img src="data:image/png;base64,AAAA"> <img src="img/../img/logo.png">
  <a href="/assets/style.5e6f7a8b.css">again</a>
</body></html>"##;
        assert_eq!(
            references(html),
            [
                "assets/app.11111111.js",
                "assets/style.5e6f7a8b.css",
                "favicon.ico",
                "img/logo.png",
            ]
        );
    }

    #[test]
    fn a_build_without_the_old_builds_assets_is_named_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, body: &str| {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        };
        write(
            "v1/index.html",
            r#"<script src="/assets/app.11111111.js"></script><link href="/assets/s.22222222.css">"#,
        );
        write("v1/assets/app.11111111.js", "1");
        write("v1/assets/s.22222222.css", "1");
        write(
            "v2/index.html",
            r#"<script src="/assets/app.33333333.js"></script>"#,
        );
        write("v2/assets/app.33333333.js", "2");
        let (v1, v2) = (dir.path().join("v1"), dir.path().join("v2"));
        assert_eq!(
            missing(&v1, &v2).unwrap(),
            ["assets/app.11111111.js", "assets/s.22222222.css"]
        );
        // Carrying the old assets: nothing missing.
        write("v2/assets/app.11111111.js", "1");
        write("v2/assets/s.22222222.css", "1");
        assert!(missing(&v1, &v2).unwrap().is_empty());
        assert!(matches!(
            missing(&v1, &dir.path().join("v3")),
            Err(SiteError::Missing(_))
        ));
    }
}

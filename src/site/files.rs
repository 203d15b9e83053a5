//! The files of a build directory and how each is cached.
//!
//! Bundlers name every asset after a hash of its content (Vite
//! `index-BxYz12Ab.js`, webpack `main.3f9a1c2b.js`), so an asset's URL never
//! serves two contents: it may be cached for good. The entry documents that
//! name them (`index.html`) must be revalidated on every request, or a
//! browser keeps loading the old assets after a deployment. Everything else
//! (`favicon.ico`, `robots.txt`) is cached briefly.

use std::path::{Path, PathBuf};

/// `Cache-Control` of entry documents: revalidated on every request.
pub const ENTRY_CACHE: &str = "no-cache";
/// `Cache-Control` of content-hashed assets: a year, never revalidated.
pub const HASHED_CACHE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of every other file: five minutes.
pub const OTHER_CACHE: &str = "public, max-age=300";

/// One file of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFile {
    /// Its path in the build, `/`-separated, no leading `/` (`assets/app.js`).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// `Content-Type`, from its extension.
    pub content_type: String,
    /// `Cache-Control`: see [`cache_control`].
    pub cache_control: &'static str,
}

/// Why a build directory cannot be deployed.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The directory does not exist.
    #[error("{0}: no such directory")]
    Missing(PathBuf),
    /// The path is a file or something else.
    #[error("{0}: not a directory")]
    NotADirectory(PathBuf),
    /// No file in it: an empty build would serve nothing but 404s.
    #[error("{0}: no files in it (did the build run?)")]
    Empty(PathBuf),
    /// No `index.html` at its top: nothing would answer `/`.
    #[error("{0}: no index.html at its top")]
    NoIndex(PathBuf),
    /// Reading it failed.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Every file under `dir`, sorted by path; an error for a directory that is
/// missing, not a directory, empty, or without an `index.html` at its top.
/// Hidden files and directories (`.DS_Store`, `.git`) are left out.
pub fn scan(dir: &Path) -> Result<Vec<SiteFile>, SiteError> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SiteError::Missing(dir.to_path_buf()))
        }
        Err(e) => return Err(SiteError::Io(dir.to_path_buf(), e)),
        Ok(m) if !m.is_dir() => return Err(SiteError::NotADirectory(dir.to_path_buf())),
        Ok(_) => {}
    }
    let mut files = Vec::new();
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            SiteError::Io(path, e.into())
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .expect("walked under dir")
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let size = entry
            .metadata()
            .map_err(|e| SiteError::Io(entry.path().to_path_buf(), e.into()))?
            .len();
        files.push(SiteFile {
            content_type: content_type(&rel),
            cache_control: cache_control(&rel),
            path: rel,
            size,
        });
    }
    if files.is_empty() {
        return Err(SiteError::Empty(dir.to_path_buf()));
    }
    if !files.iter().any(|f| f.path == "index.html") {
        return Err(SiteError::NoIndex(dir.to_path_buf()));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// `Content-Type` of `path`, from its extension; text types in UTF-8.
pub fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    match mime.type_() {
        mime_guess::mime::TEXT => format!("{mime}; charset=utf-8"),
        _ if mime.subtype() == mime_guess::mime::JAVASCRIPT
            || mime.subtype() == mime_guess::mime::JSON =>
        {
            format!("{mime}; charset=utf-8")
        }
        _ => mime.to_string(),
    }
}

/// `Cache-Control` of `path`: [`ENTRY_CACHE`] for HTML, [`HASHED_CACHE`]
/// for a content-hashed name ([`is_hashed`]), [`OTHER_CACHE`] otherwise.
pub fn cache_control(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with(".html") || name.ends_with(".htm") {
        ENTRY_CACHE
    } else if is_hashed(name) {
        HASHED_CACHE
    } else {
        OTHER_CACHE
    }
}

/// Whether a file name carries a content hash: a part of its stem, after a
/// `.` or `-`, of 8 or more letters and digits with at least one digit and
/// one letter (`main.3f9a1c2b.js`, `index-BxYz12Ab.js`; not `jquery.min.js`,
/// `logo-20240101.png`). A hash that happens to lack a digit or a letter
/// is missed, and the file cached five minutes: the safe way to be wrong,
/// where the other would keep a changed file stale for a year.
pub fn is_hashed(name: &str) -> bool {
    let stem = match name.rsplit_once('.') {
        Some((stem, _ext)) => stem,
        None => return false,
    };
    stem.split(['.', '-']).skip(1).any(|part| {
        part.len() >= 8
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && part.chars().any(|c| c.is_ascii_digit())
            && part.chars().any(|c| c.is_ascii_alphabetic())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_told_from_plain_ones() {
        for hashed in [
            "main.3f9a1c2b.js",
            "index-BxYz12Ab.js",
            "style.5e6f7a8b.css",
            "chunk-vendors.a1b2c3d4.js",
            "logo.9f8e7d6c5b.svg",
        ] {
            assert!(is_hashed(hashed), "{hashed}");
        }
        for plain in [
            "index.html",
            "jquery.min.js",
            "favicon.ico",
            "logo-20240101.png",
            "app.js",
            "abcdefgh12",
            "robots.txt",
        ] {
            assert!(!is_hashed(plain), "{plain}");
        }
    }

    #[test]
    fn entry_documents_revalidate_hashed_assets_are_immutable() {
        assert_eq!(cache_control("index.html"), ENTRY_CACHE);
        assert_eq!(cache_control("docs/about.html"), ENTRY_CACHE);
        assert_eq!(cache_control("assets/main.3f9a1c2b.js"), HASHED_CACHE);
        assert_eq!(cache_control("favicon.ico"), OTHER_CACHE);
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/main.3f9a1c2b.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("a/b.woff2"), "font/woff2");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }

    #[test]
    fn a_build_is_scanned_and_bad_directories_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(matches!(
            scan(&root.join("nope")),
            Err(SiteError::Missing(_))
        ));
        std::fs::write(root.join("file"), "x").unwrap();
        assert!(matches!(
            scan(&root.join("file")),
            Err(SiteError::NotADirectory(_))
        ));
        let build = root.join("dist");
        std::fs::create_dir_all(build.join("assets")).unwrap();
        std::fs::create_dir_all(build.join(".git")).unwrap();
        std::fs::write(build.join(".git/HEAD"), "x").unwrap();
        let e = scan(&build).unwrap_err();
        assert!(matches!(e, SiteError::Empty(_)), "{e}");
        assert!(e.to_string().contains("dist: no files"), "{e}");
        std::fs::write(build.join("assets/app.3f9a1c2b.js"), "1;").unwrap();
        assert!(matches!(scan(&build), Err(SiteError::NoIndex(_))));
        std::fs::write(build.join("index.html"), "<html></html>").unwrap();
        let files = scan(&build).unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["assets/app.3f9a1c2b.js", "index.html"]);
        assert_eq!((files[0].size, files[0].cache_control), (2, HASHED_CACHE));
    }
}

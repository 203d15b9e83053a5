//! `teal site check --old DIR --new DIR`, `teal site publish --dir DIR --to
//! s3://BUCKET/PREFIX --revision R` and `teal site serve --root DIR --port P
//! --revision R`: a static site's build (see [`crate::site`]).

use super::render::Format;
use super::{session, Failure};
use crate::aws::s3::{prune::Pruned, publish::Published, SiteBucket};
use crate::cli::args::SiteCommand;
use crate::exit::Exit;
use crate::ports::{ErrorKind, PortError};
use crate::site::files::SiteFile;
use crate::wiring::Cloud;
use std::io::Write;
use std::path::PathBuf;

/// `teal site ...`.
pub(super) fn run(command: SiteCommand, cloud: &Cloud, format: Format) -> Result<Exit, Failure> {
    match command {
        SiteCommand::Check { old, new } => check(&old, &new, format),
        SiteCommand::Publish {
            dir,
            to,
            revision,
            carry_from,
            keep,
            distribution,
        } => {
            let mut publish = Publish::validate(dir, &to, revision, carry_from, keep)?;
            publish.distributions = distribution;
            session::runtime()?.block_on(publish.run(cloud, format))
        }
        SiteCommand::Serve {
            root,
            port,
            revision,
            health_path,
        } => {
            let site = crate::local::site::Site {
                root,
                revision,
                health_path,
            };
            session::runtime()?.block_on(crate::local::site::serve(port, site))?;
            Ok(Exit::Succeeded)
        }
    }
}

/// Exit 0 when the new build has every file the old `index.html` names;
/// exit 2 naming those it lacks, or a build that cannot be read.
fn check(old: &std::path::Path, new: &std::path::Path, format: Format) -> Result<Exit, Failure> {
    let missing =
        crate::site::skew::missing(old, new).map_err(|e| Failure::Usage(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({
                "schema": 1,
                "old": old.display().to_string(),
                "new": new.display().to_string(),
                "missing": missing,
            })
        )?,
        Format::Text if missing.is_empty() => writeln!(
            out,
            "{}: has every file {}/index.html references",
            new.display(),
            old.display()
        )?,
        Format::Text => {
            writeln!(
                out,
                "{}: lacks {} file(s) that {}/index.html references; a browser that loaded the \
                 old page asks for them after the switch and gets 404s (version skew):",
                new.display(),
                missing.len(),
                old.display()
            )?;
            for m in &missing {
                writeln!(out, "  {m}")?;
            }
            writeln!(
                out,
                "keep the old build's assets in the new one (copy them back after the build \
                 cleans its output directory)"
            )?;
        }
    }
    Ok(match missing.is_empty() {
        true => Exit::Succeeded,
        false => Exit::BadInput,
    })
}

/// `teal site publish`, its arguments checked: everything that can be
/// known wrong without AWS is, before any call.
struct Publish {
    dir: PathBuf,
    files: Vec<SiteFile>,
    bucket: String,
    prefix: String,
    revision: String,
    carry_from: Option<String>,
    keep: Option<usize>,
    /// Distributions whose served revisions are never pruned.
    distributions: Vec<String>,
}

impl Publish {
    fn validate(
        dir: PathBuf,
        to: &str,
        revision: String,
        carry_from: Option<String>,
        keep: Option<u32>,
    ) -> Result<Publish, Failure> {
        let usage = |m: String| Failure::Usage(m);
        let files = crate::site::files::scan(&dir).map_err(|e| usage(format!("--dir {e}")))?;
        let (bucket, prefix) = to
            .strip_prefix("s3://")
            .map(|rest| rest.split_once('/').unwrap_or((rest, "")))
            .filter(|(b, _)| !b.is_empty())
            .ok_or_else(|| usage(format!("--to {to:?}: not s3://BUCKET/PREFIX")))?;
        for (flag, r) in [
            ("--revision", Some(&revision)),
            ("--carry-from", carry_from.as_ref()),
        ] {
            if let Some(r) = r.filter(|r| !crate::aws::s3::valid_revision(r)) {
                return Err(usage(format!(
                    "{flag} {r:?}: a revision names one prefix: letters, digits and -_.+ only"
                )));
            }
        }
        if carry_from.as_ref() == Some(&revision) {
            return Err(usage(format!(
                "--carry-from {revision:?}: the revision being published; name blue's"
            )));
        }
        Ok(Publish {
            dir,
            files,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            revision,
            carry_from,
            keep: keep.map(|k| k as usize),
            distributions: vec![],
        })
    }

    async fn run(self, cloud: &Cloud, format: Format) -> Result<Exit, Failure> {
        let aws = crate::aws::Aws::load(cloud.region.clone(), cloud.profile.clone()).await;
        let site = SiteBucket::new(&aws, &self.bucket, &self.prefix);
        let port = |e: PortError| match e.kind {
            ErrorKind::NotFound => Failure::Usage(e.message),
            _ => Failure::Driver(crate::driver::DriverError::Port(e)),
        };
        // Every check before the first write: the bucket, blue's revision.
        site.check().await.map_err(port)?;
        if let Some(from) = &self.carry_from {
            if site
                .list(&site.revision_prefix(from))
                .await
                .map_err(port)?
                .is_empty()
            {
                return Err(Failure::Usage(format!(
                    "--carry-from {from:?}: s3://{}/{}: no such revision",
                    self.bucket,
                    site.revision_prefix(from)
                )));
            }
        }
        // What the distributions serve, read before any write too.
        let mut served = vec![];
        for id in &self.distributions {
            for path in crate::aws::cloudfront::served_paths(&aws, id)
                .await
                .map_err(|e| {
                    port(PortError {
                        message: format!("--distribution: {}", e.message),
                        ..e
                    })
                })?
            {
                served.extend(site.revision_at(&path));
            }
        }
        let published = site
            .publish(&self.dir, &self.files, &self.revision)
            .await
            .map_err(port)?;
        let carried = match &self.carry_from {
            Some(from) => site
                .carry(from, &self.revision, &self.files)
                .await
                .map_err(port)?,
            None => vec![],
        };
        let pruned = match self.keep {
            Some(keep) => {
                let mut protected = vec![self.revision.as_str()];
                protected.extend(self.carry_from.as_deref());
                protected.extend(served.iter().map(String::as_str));
                Some(site.prune(keep, &protected).await.map_err(port)?)
            }
            None => None,
        };
        self.report(&site, &published, &carried, pruned.as_ref(), format)?;
        Ok(Exit::Succeeded)
    }

    fn report(
        &self,
        site: &SiteBucket,
        published: &Published,
        carried: &[String],
        pruned: Option<&Pruned>,
        format: Format,
    ) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        let url = format!(
            "s3://{}/{}",
            self.bucket,
            site.revision_prefix(&self.revision)
        );
        match format {
            Format::Json => writeln!(
                out,
                "{}",
                serde_json::json!({
                    "schema": 1,
                    "url": url,
                    "files": self.files.len(),
                    "published": published,
                    "carried": carried,
                    "pruned": pruned,
                })
            ),
            Format::Text => {
                writeln!(
                    out,
                    "{url}: {} file(s), {} uploaded ({} bytes), {} already there; listed: all present",
                    self.files.len(),
                    published.uploaded.len(),
                    published.bytes,
                    published.skipped
                )?;
                if let Some(from) = &self.carry_from {
                    writeln!(
                        out,
                        "carried {} hashed asset(s) of {from} that this build lacks (pages loaded \
                         from {from} keep finding them){}",
                        carried.len(),
                        match carried.is_empty() {
                            true => String::new(),
                            false => format!(": {}", carried.join(", ")),
                        }
                    )?;
                }
                if let Some(p) = pruned {
                    writeln!(
                        out,
                        "kept {} revision(s) ({}); deleted {} ({}), {} object(s)",
                        p.kept.len(),
                        p.kept.join(", "),
                        p.deleted.len(),
                        p.deleted.join(", "),
                        p.objects
                    )?;
                }
                Ok(())
            }
        }
    }
}

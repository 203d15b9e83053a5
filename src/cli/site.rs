//! `teal site check --old DIR --new DIR` and `teal site serve --root DIR
//! --port P --revision R`: a static site's build (see [`crate::site`]).

use super::render::Format;
use super::{session, Failure};
use crate::cli::args::SiteCommand;
use crate::exit::Exit;
use std::io::Write;

/// `teal site ...`.
pub(super) fn run(command: SiteCommand, format: Format) -> Result<Exit, Failure> {
    match command {
        SiteCommand::Check { old, new } => check(&old, &new, format),
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

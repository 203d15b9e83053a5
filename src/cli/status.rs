//! `teal status`: what the ledger and the cloud say of the deployment, once
//! or redrawn as it changes.

use super::render::Format;
use super::session::runtime;
use super::Failure;
use crate::config::Config;
use crate::driver::DriverError;
use crate::exit::Exit;
use crate::wiring::Cloud;
use std::io::Write;

/// `teal status [--watch]`: the recorded deployment, read-only.
pub(super) fn status(
    config: &Config,
    cloud: &Cloud,
    format: Format,
    watch: Option<std::time::Duration>,
) -> Result<Exit, Failure> {
    runtime()?.block_on(async {
        let ports = crate::wiring::wire(config, cloud, None).await?.ports;
        let tty = std::io::IsTerminal::is_terminal(&std::io::stdout()) && format == Format::Text;
        let mut last: Option<serde_json::Value> = None;
        loop {
            let report = crate::status::read(&ports)
                .await
                .map_err(DriverError::Port)?;
            // What counts as a change: everything but the read time and the
            // countdown in words (`next_at` carries the time itself).
            let key = report.as_ref().map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["at"] = serde_json::Value::Null;
                v["next"] = serde_json::Value::Null;
                v
            });
            let changed = last.is_none() || key != last;
            let mut out = std::io::stdout().lock();
            if tty && watch.is_some() {
                // Redraw in place.
                write!(out, "\x1b[H\x1b[2J")?;
            }
            if changed || tty {
                match (&report, format) {
                    (None, Format::Json) => writeln!(
                        out,
                        "{}",
                        serde_json::json!({ "schema": crate::status::STATUS_SCHEMA, "deployment": null })
                    )?,
                    (None, Format::Text) => {
                        writeln!(out, "no deployment is recorded for {}", config.service)?
                    }
                    (Some(r), Format::Json) => writeln!(
                        out,
                        "{}",
                        serde_json::to_string(r).map_err(std::io::Error::other)?
                    )?,
                    (Some(r), Format::Text) => write!(out, "{}", crate::status::render(r))?,
                }
                out.flush()?;
            }
            let ended = report.as_ref().is_none_or(|r| r.outcome.is_some());
            match watch {
                Some(every) if !ended => tokio::time::sleep(every).await,
                _ => return Ok(Exit::Succeeded),
            }
            last = key.or(Some(serde_json::Value::Null));
        }
    })
}

//! What every command shares besides its ports (built once, by
//! `crate::wiring::wire`): the runtime, the event sink, the API-call summary and signals.

use super::progress;
use super::render::{self, Format};
use super::Failure;
use crate::driver::{DriverError, EventSink};
use crate::events::Event;
use crate::exit::Exit;
use crate::wiring::Wired;

/// Who this process is, for the lock: the CodeBuild build, or user@host:pid.
pub(super) fn owner() -> String {
    if let Ok(id) = std::env::var("CODEBUILD_BUILD_ID") {
        return format!("codebuild:{id}");
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}:{}", std::process::id())
}

/// One command drives at most one deployment: a single-threaded runtime.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The AWS API calls this process made, per operation, when it used AWS;
/// with the number of observations of the deployment when it drove one
/// (each reads the gates once).
pub(super) fn report_calls(wired: &Wired, observations: Option<u64>, format: Format) {
    if let Some(calls) = &wired.calls {
        report_api_calls(&calls.snapshot(), observations, format);
    }
}

/// The AWS API calls of this run, per operation.
pub(super) fn report_api_calls(
    calls: &crate::aws::CallCounts,
    observations: Option<u64>,
    format: Format,
) {
    let total = calls.total();
    match format {
        Format::Json => {
            let line = render::CliLine::ApiCalls {
                total,
                observations,
                calls: calls
                    .accepted
                    .iter()
                    .map(|(op, n)| (op.to_string(), *n))
                    .collect(),
                rejected: calls.rejected.clone(),
                throttled: calls.throttled,
                paced: calls.paced,
                paced_ms: calls.paced_ms,
            };
            let _ = render::write_json(&mut std::io::stdout().lock(), &line);
        }
        Format::Text => {
            let list = |m: &mut dyn Iterator<Item = (String, u64)>| {
                m.map(|(op, n)| format!("{op}={n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let per_op = list(&mut calls.accepted.iter().map(|(o, n)| (o.to_string(), *n)));
            let over = observations.map_or(String::new(), |n| format!(" over {n} observations"));
            println!("AWS API calls: {total}{over} ({per_op})");
            // Apart: the summary line lists what AWS carried out.
            if !calls.rejected.is_empty() {
                let n: u64 = calls.rejected.values().sum();
                println!(
                    "AWS rejected {n} of them, changing nothing: {}",
                    list(&mut calls.rejected.iter().map(|(o, n)| (o.clone(), *n)))
                );
            }
            if calls.throttled > 0 || calls.paced > 0 {
                println!(
                    "AWS throttled {} call(s), each retried; {} call(s) waited {} ms in all for teal's own rate limit",
                    calls.throttled, calls.paced, calls.paced_ms
                );
            }
        }
    }
}

pub(super) fn event_sink(format: Format) -> EventSink {
    match format {
        Format::Json => Box::new(move |e: &Event| {
            let _ = render::write_event(&mut std::io::stdout().lock(), format, e);
        }),
        Format::Text => {
            let mut sink = progress::TextSink::new(progress::Mode::detect());
            Box::new(move |e: &Event| sink.write(e))
        }
    }
}

/// SIGINT and SIGTERM, by name, for the driver to bring traffic to a safe
/// state before stopping. A second signal ends the process at once.
pub(super) fn signals() -> Result<tokio::sync::watch::Receiver<Option<String>>, DriverError> {
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind| {
        signal(kind).map_err(|e| {
            DriverError::Port(crate::ports::PortError::new(
                "signal",
                crate::ports::ErrorKind::Invalid,
                e.to_string(),
            ))
        })
    };
    let (tx, rx) = tokio::sync::watch::channel(None);
    let mut int = install(SignalKind::interrupt())?;
    let mut term = install(SignalKind::terminate())?;
    tokio::spawn(async move {
        let mut seen = false;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            if seen {
                eprintln!("{name} again: stopping now; `teal resume` continues from the ledger");
                std::process::exit(Exit::Halted.code().into());
            }
            seen = true;
            let _ = tx.send(Some(name.to_string()));
        }
    });
    Ok(rx)
}

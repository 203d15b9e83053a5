//! `teal report FILE.json [--svg OUT.svg]`: a deployment's report, summed up
//! and drawn.

use super::render::Format;
use super::Failure;
use crate::exit::Exit;
use std::io::Write;

/// `teal report FILE.json [--svg OUT.svg]`.
pub(super) fn report(
    file: &std::path::Path,
    svg: Option<&std::path::Path>,
    format: Format,
) -> Result<Exit, Failure> {
    let report = crate::report::Report::read(file).map_err(|e| Failure::Usage(e.to_string()))?;
    if let Some(svg) = svg {
        report
            .draw_svg(svg)
            .map_err(|e| Failure::Io(std::io::Error::other(e.to_string())))?;
    }
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({
                "schema": 1,
                "deployment": report.deployment,
                "outcome": report.outcome.as_ref().map(|o| o.class()),
                "summary": report.summary,
                "svg": svg.map(|p| p.display().to_string()),
            })
        )?,
        Format::Text => {
            writeln!(
                out,
                "{} {} of {} ({}): {}",
                report.deployment, report.revision, report.service, report.strategy, report.summary
            )?;
            let took = report.ended_at.saturating_sub(report.started_at);
            let changes: Vec<String> = report
                .weights
                .iter()
                .map(|w| format!("{}%", w.green))
                .collect();
            writeln!(
                out,
                "  {} over {}; green's weight: {}",
                report.events.len().to_string() + " events",
                crate::model::fmt_ms(took),
                changes.join(" → ")
            )?;
            for j in &report.judgments {
                let score = j
                    .score
                    .map_or("no score".to_string(), |s| format!("score {s:.0}"));
                let metrics: Vec<String> = j
                    .metrics
                    .iter()
                    .map(|m| {
                        format!(
                            "{} green {:.4} vs blue {:.4} {}",
                            m.name, m.green, m.blue, m.verdict
                        )
                    })
                    .collect();
                writeln!(
                    out,
                    "  analysis of step {}: {} ({score}; {})",
                    j.step,
                    format!("{:?}", j.outcome).to_uppercase(),
                    metrics.join(", ")
                )?;
            }
            for p in &report.people {
                writeln!(
                    out,
                    "  {} {} by {}",
                    crate::model::fmt_time(p.at),
                    p.what,
                    p.by
                )?;
            }
            let calls: u64 = report.calls.values().sum();
            writeln!(
                out,
                "  {calls} calls over {} operations",
                report.calls.len()
            )?;
            if let Some(svg) = svg {
                writeln!(out, "  timeline drawn to {}", svg.display())?;
            }
        }
    }
    Ok(Exit::Succeeded)
}

//! Text output for people. In a CI log (stdout not a terminal, or `CI` or
//! `CODEBUILD_BUILD_ID` set): one plain timestamped line per change, no
//! redraws, no colour, and a line repeated back to back folded into a count.
//! On a terminal: the same lines, coloured unless `NO_COLOR` is set, under a
//! live status line (indicatif) saying where the deployment is.

use super::render::describe;
use crate::events::{Event, EventKind};
use crate::model::{fmt_time, GateState};
use console::Style;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// How text output is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain lines (CI logs, pipes, files).
    Plain,
    /// Lines plus a live status line, on a terminal.
    Live {
        /// Whether to colour (`NO_COLOR` unset).
        colour: bool,
    },
}

impl Mode {
    /// The mode for this process's stdout and environment.
    pub fn detect() -> Mode {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        let ci = set("CI") || set("CODEBUILD_BUILD_ID");
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        if ci || dumb || !std::io::stdout().is_terminal() {
            return Mode::Plain;
        }
        Mode::Live {
            colour: !set("NO_COLOR"),
        }
    }
}

/// Folds a line repeated back to back: the first is written, the repeats are
/// counted and reported once a different line comes (or at the end).
#[derive(Debug, Default)]
pub struct Folder {
    last: Option<String>,
    repeats: u32,
    last_at: u64,
}

impl Folder {
    /// The lines to write for `text` seen at `at` (none when it repeats the last).
    pub fn push(&mut self, at: u64, text: &str) -> Vec<String> {
        if self.last.as_deref() == Some(text) {
            self.repeats += 1;
            self.last_at = at;
            return vec![];
        }
        let mut out = self.flush();
        out.push(format!("{}  {text}", fmt_time(at)));
        self.last = Some(text.to_string());
        self.last_at = at;
        out
    }

    /// The pending count of repeats, if any, as a line.
    pub fn flush(&mut self) -> Vec<String> {
        let n = std::mem::take(&mut self.repeats);
        if n == 0 {
            return vec![];
        }
        vec![format!(
            "{}  (repeated {n} more time{})",
            fmt_time(self.last_at),
            if n == 1 { "" } else { "s" }
        )]
    }
}

/// Where the deployment is, for the live status line.
#[derive(Debug, Default)]
struct Status {
    phase: String,
    weights: String,
    green: String,
    gates: BTreeMap<String, GateState>,
}

impl Status {
    fn note(&mut self, e: &EventKind) {
        match e {
            EventKind::Phase { detail, .. } => self.phase = detail.clone(),
            EventKind::WeightsSet { weights } => self.weights = weights.to_string(),
            EventKind::GreenHealth { healthy, desired } => {
                self.green = format!("green {healthy}/{desired} healthy")
            }
            EventKind::Gate { gate, state, .. } => {
                self.gates.insert(gate.clone(), *state);
            }
            EventKind::HookStarted { hook } => self.phase = format!("hook {hook} running"),
            _ => {}
        }
    }

    fn line(&self) -> String {
        let failing: Vec<&str> = self
            .gates
            .iter()
            .filter(|(_, s)| **s != GateState::Ok)
            .map(|(g, _)| g.as_str())
            .collect();
        let gates = if failing.is_empty() {
            format!("{} gate(s) OK", self.gates.len())
        } else {
            format!("not OK: {}", failing.join(", "))
        };
        [self.phase.as_str(), &self.weights, &self.green, &gates]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// The colour of an event's line: red for what goes wrong, green for success.
fn style_of(e: &EventKind) -> Style {
    use crate::engine::Outcome;
    match e {
        EventKind::Gate {
            state: GateState::Alarm,
            ..
        }
        | EventKind::HookFinished { passed: false, .. }
        | EventKind::Interrupted { .. } => Style::new().red(),
        EventKind::Phase { to, .. } if to == "rolling_back" || to == "halting" => {
            Style::new().red().bold()
        }
        EventKind::Finished {
            outcome: Outcome::Succeeded,
            ..
        } => Style::new().green().bold(),
        EventKind::Finished { .. } => Style::new().red().bold(),
        EventKind::Warning { .. } | EventKind::Retrying { .. } => Style::new().yellow(),
        _ => Style::new(),
    }
}

/// Writes events as text in the given mode.
pub struct TextSink {
    mode: Mode,
    fold: Folder,
    bar: Option<ProgressBar>,
    status: Status,
}

impl TextSink {
    /// A sink for `mode`.
    pub fn new(mode: Mode) -> TextSink {
        TextSink {
            mode,
            fold: Folder::default(),
            bar: None,
            status: Status::default(),
        }
    }

    /// Write one event.
    pub fn write(&mut self, e: &Event) {
        let mut lines = self.fold.push(e.at, &describe(&e.kind));
        let finished = matches!(e.kind, EventKind::Finished { .. });
        if finished {
            lines.extend(self.fold.flush());
        }
        match self.mode {
            Mode::Plain => {
                let mut out = std::io::stdout().lock();
                for l in lines {
                    let _ = writeln!(out, "{l}");
                }
            }
            Mode::Live { colour } => {
                self.status.note(&e.kind);
                let style = style_of(&e.kind).force_styling(colour);
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new_spinner();
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                            .expect("a valid template"),
                    );
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                for l in lines {
                    bar.println(style.apply_to(l).to_string());
                }
                if finished {
                    bar.finish_and_clear();
                    self.bar = None;
                } else {
                    bar.set_message(self.status.line());
                }
            }
        }
    }
}

impl Drop for TextSink {
    fn drop(&mut self) {
        // A run that stops without an outcome still reports its folded repeats.
        let lines = self.fold.flush();
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let mut out = std::io::stdout().lock();
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_lines_are_folded_into_a_count() {
        let mut f = Folder::default();
        let t0 = 1_767_225_600_000;
        assert_eq!(f.push(t0, "a").len(), 1);
        assert!(f.push(t0 + 1_000, "a").is_empty());
        assert!(f.push(t0 + 2_000, "a").is_empty());
        let out = f.push(t0 + 3_000, "b");
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0], "2026-01-01T00:00:02Z  (repeated 2 more times)");
        assert!(out[1].ends_with("  b"));
        assert!(f.flush().is_empty(), "nothing pending after a new line");
        assert!(f.push(t0 + 4_000, "b").is_empty());
        assert_eq!(f.flush().len(), 1);
    }

    #[test]
    fn the_status_line_says_where_the_deployment_is() {
        let mut s = Status::default();
        s.note(&EventKind::Phase {
            from: "provisioning".into(),
            to: "shifting".into(),
            detail: "step 1/2: 10% to green".into(),
        });
        s.note(&EventKind::Gate {
            gate: "web-5xx".into(),
            state: GateState::Ok,
            reason: String::new(),
        });
        assert_eq!(s.line(), "step 1/2: 10% to green · 1 gate(s) OK");
        s.note(&EventKind::Gate {
            gate: "web-5xx".into(),
            state: GateState::Alarm,
            reason: String::new(),
        });
        assert!(s.line().ends_with("not OK: web-5xx"), "{}", s.line());
    }
}

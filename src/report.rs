//! The deployment report: `teal deploy --report FILE.json` writes one, and
//! `teal report FILE.json --svg timeline.svg` draws it.
//!
//! The report keeps every event of the run (actions taken, changes observed,
//! with their times) and, derived from them, the series a reader wants at a
//! glance: green's weight over time, each gate's state over time, the phase
//! changes (step boundaries), the API calls per operation, and the outcome
//! with its reason. The timeline is drawn with `plotters`.

use crate::engine::Outcome;
use crate::events::{Event, EventKind};
use crate::model::{GateState, Millis};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The report format version this build writes.
pub const REPORT_SCHEMA: u32 = 1;

/// A deployment, as a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Format version ([`REPORT_SCHEMA`]).
    pub schema: u32,
    /// The deployment id.
    pub deployment: String,
    /// The service.
    pub service: String,
    /// Green's revision.
    pub revision: String,
    /// Blue's revision, when known.
    pub blue_revision: Option<String>,
    /// The strategy's name.
    pub strategy: String,
    /// Green's weight at each step.
    pub steps: Vec<u8>,
    /// The first event's time.
    pub started_at: Millis,
    /// The last event's time.
    pub ended_at: Millis,
    /// How it ended; `None` when the run stopped before an outcome.
    pub outcome: Option<Outcome>,
    /// The outcome in words (with the reason and its evidence).
    pub summary: String,
    /// Green's weight, from the start and after every confirmed change.
    pub weights: Vec<WeightPoint>,
    /// Every gate state change, in order.
    pub gates: Vec<GatePoint>,
    /// Every phase change, in order: step boundaries, rollback, retirement.
    pub phases: Vec<PhasePoint>,
    /// Every judgment of a bake by canary analysis, in order.
    #[serde(default)]
    pub judgments: Vec<JudgmentPoint>,
    /// Who did what: every operator command taken and every approval, in order.
    #[serde(default)]
    pub people: Vec<PersonPoint>,
    /// Port calls per operation, as the driver counted them.
    pub calls: BTreeMap<String, u64>,
    /// Every event, as `--output json` prints it.
    pub events: Vec<serde_json::Value>,
}

/// A person's act at `at`: an operator command, or a step's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonPoint {
    /// When the driver took it.
    pub at: Millis,
    /// `teal shift --to green 25%`, `approve step 2`, ...
    pub what: String,
    /// Who: an AWS ARN, user@host, or `on_timeout = "promote"`.
    pub by: String,
}

/// Green's weight from `at` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightPoint {
    /// When the router read it back.
    pub at: Millis,
    /// Percent to green.
    pub green: u8,
}

/// A gate's state from `at` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatePoint {
    /// When teal saw it.
    pub at: Millis,
    /// The gate.
    pub gate: String,
    /// Its state.
    pub state: GateState,
}

/// A phase entered at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhasePoint {
    /// When.
    pub at: Millis,
    /// The phase (`shifting`, `rolling_back`, `retiring`, ...).
    pub phase: String,
    /// What it means (`step 2/3: 25% to green`, the rollback's reason, ...).
    pub detail: String,
}

/// A step's judgment, at `at`: green's and blue's means per metric over
/// the bake, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgmentPoint {
    /// When it was made.
    pub at: Millis,
    /// The step (1-based).
    pub step: usize,
    /// What it decided.
    pub outcome: crate::analysis::StepOutcome,
    /// The score, when some metric had data enough.
    pub score: Option<f64>,
    /// Each compared metric.
    pub metrics: Vec<crate::analysis::assess::MetricLine>,
}

/// Why a report could not be read or drawn.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
    /// The file is not a teal report.
    #[error("{path} is not a teal report: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        source: serde_json::Error,
    },
    /// The report holds no event to draw.
    #[error("{0} holds no event: nothing to draw")]
    Empty(String),
    /// plotters failed.
    #[error("drawing {path}: {message}")]
    Draw {
        /// The SVG file.
        path: String,
        /// plotters' error.
        message: String,
    },
}

impl Report {
    /// The report of a run from its events (in order) and its call counts.
    pub fn from_events(events: &[Event], calls: BTreeMap<String, u64>) -> Report {
        let mut r = Report {
            schema: REPORT_SCHEMA,
            deployment: events
                .first()
                .map(|e| e.deployment.clone())
                .unwrap_or_default(),
            service: String::new(),
            revision: String::new(),
            blue_revision: None,
            strategy: String::new(),
            steps: vec![],
            started_at: events.first().map_or(0, |e| e.at),
            ended_at: events.last().map_or(0, |e| e.at),
            outcome: None,
            summary: "the run stopped before an outcome; `teal status` shows where it is".into(),
            weights: vec![],
            gates: vec![],
            phases: vec![],
            judgments: vec![],
            people: vec![],
            calls,
            events: events
                .iter()
                .map(|e| serde_json::to_value(e).expect("events serialise"))
                .collect(),
        };
        for e in events {
            match &e.kind {
                EventKind::Started {
                    service,
                    revision,
                    blue_revision,
                    strategy,
                    steps,
                    ..
                } => {
                    r.service = service.clone();
                    r.revision = revision.clone();
                    r.blue_revision = blue_revision.clone();
                    r.strategy = strategy.clone();
                    r.steps = steps.clone();
                    r.weights.push(WeightPoint { at: e.at, green: 0 });
                }
                EventKind::WeightsSet { weights } => r.weights.push(WeightPoint {
                    at: e.at,
                    green: weights.green,
                }),
                EventKind::Gate { gate, state, .. } => r.gates.push(GatePoint {
                    at: e.at,
                    gate: gate.clone(),
                    state: *state,
                }),
                EventKind::Phase { to, detail, .. } => r.phases.push(PhasePoint {
                    at: e.at,
                    phase: to.clone(),
                    detail: detail.clone(),
                }),
                EventKind::Judgment {
                    step,
                    outcome,
                    score,
                    metrics,
                    ..
                } => r.judgments.push(JudgmentPoint {
                    at: e.at,
                    step: *step,
                    outcome: *outcome,
                    score: *score,
                    metrics: metrics.clone(),
                }),
                EventKind::Command { command, by } => r.people.push(PersonPoint {
                    at: e.at,
                    what: format!("teal {command}"),
                    by: by.clone(),
                }),
                EventKind::Approved { step, by } => r.people.push(PersonPoint {
                    at: e.at,
                    what: format!("approve step {step}"),
                    by: by.clone(),
                }),
                EventKind::Finished { outcome, calls } => {
                    r.summary = outcome.to_string();
                    r.outcome = Some(outcome.clone());
                    if r.calls.is_empty() {
                        r.calls = calls.clone();
                    }
                }
                _ => {}
            }
        }
        r
    }

    /// Write the report as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), ReportError> {
        let text = serde_json::to_string_pretty(self).expect("a report serialises");
        std::fs::write(path, text + "\n").map_err(|source| ReportError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Read a report written by [`Report::write`].
    pub fn read(path: &Path) -> Result<Report, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ReportError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// The marker drawn at the end, if the run got to one: `rolled back`,
    /// `halted` (at the phase that turned back) or `blue retired`.
    pub fn marker(&self) -> Option<(Millis, String)> {
        let turned = |phase: &str| self.phases.iter().find(|p| p.phase == phase);
        match &self.outcome {
            Some(Outcome::RolledBack { reason }) => {
                turned("rolling_back").map(|p| (p.at, format!("rolled back: {reason}")))
            }
            Some(Outcome::Halted { reason }) => {
                turned("halting").map(|p| (p.at, format!("halted: {reason}")))
            }
            Some(Outcome::Succeeded) => turned("retiring").map(|p| (p.at, "blue retired".into())),
            None => None,
        }
    }

    /// Draw the timeline as SVG: green's and blue's weights over time, step
    /// boundaries, each gate's state as a band, and the end marker.
    pub fn draw_svg(&self, path: &Path) -> Result<(), ReportError> {
        if self.events.is_empty() {
            return Err(ReportError::Empty(self.deployment.clone()));
        }
        let draw_err = |e: &dyn std::fmt::Display| ReportError::Draw {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let secs = |t: Millis| t.saturating_sub(self.started_at) as f64 / 1000.0;
        let end = secs(self.ended_at).max(1.0);
        let gates: Vec<String> = {
            let mut names: Vec<String> = self.gates.iter().map(|g| g.gate.clone()).collect();
            names.sort();
            names.dedup();
            names
        };
        // Weights use 0..=100; each gate gets a 8-unit band above them.
        let top = 104.0 + 8.0 * gates.len() as f64;
        let metrics = self.judged_metrics();
        let timeline_height = 420 + 16 * gates.len() as u32;
        let root = SVGBackend::new(path, (960, timeline_height + 160 * metrics.len() as u32))
            .into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(&e))?;
        let (root, below) = root.split_vertically(timeline_height);
        for (i, metric) in metrics.iter().enumerate() {
            let area = below.split_evenly((metrics.len().max(1), 1))[i].clone();
            self.draw_metric(&area, metric, end, &secs)
                .map_err(|e| draw_err(&e))?;
        }
        let title = format!(
            "{} {}: {} ({})",
            self.service,
            self.revision,
            self.summary_head(),
            self.strategy
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..end * 1.02, 0.0..top)
            .map_err(|e| draw_err(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc("% of traffic")
            .y_labels(6)
            .disable_y_mesh()
            .draw()
            .map_err(|e| draw_err(&e))?;

        // Step boundaries: a dashed line where each step began.
        for p in self.phases.iter().filter(|p| p.phase == "shifting") {
            let x = secs(p.at);
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, 0.0), (x, 100.0)],
                    4,
                    4,
                    BLACK.mix(0.3).stroke_width(1),
                ))
                .map_err(|e| draw_err(&e))?;
        }

        // Weights as a step function: each value holds until the next.
        let mut green = Vec::new();
        for (i, w) in self.weights.iter().enumerate() {
            let x = secs(w.at);
            if let Some(prev) = i.checked_sub(1).map(|j| self.weights[j].green) {
                green.push((x, prev as f64));
            }
            green.push((x, w.green as f64));
        }
        if let Some(last) = self.weights.last() {
            green.push((end, last.green as f64));
        }
        let blue: Vec<(f64, f64)> = green.iter().map(|(x, g)| (*x, 100.0 - g)).collect();
        chart
            .draw_series(LineSeries::new(blue, BLUE.stroke_width(2)))
            .map_err(|e| draw_err(&e))?
            .label("blue weight")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(green, GREEN.stroke_width(3)))
            .map_err(|e| draw_err(&e))?
            .label("green weight")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], GREEN.stroke_width(3)));

        // Gate bands: grey OK, amber INSUFFICIENT_DATA, red ALARM.
        for (i, gate) in gates.iter().enumerate() {
            let (lo, hi) = (104.0 + 8.0 * i as f64, 110.0 + 8.0 * i as f64);
            let points: Vec<&GatePoint> = self.gates.iter().filter(|g| &g.gate == gate).collect();
            let spans = points.iter().enumerate().map(|(j, g)| {
                let to = points.get(j + 1).map_or(end, |n| secs(n.at));
                let colour = match g.state {
                    GateState::Ok => RGBColor(200, 200, 200),
                    GateState::InsufficientData => RGBColor(240, 170, 0),
                    GateState::Alarm => RED,
                };
                Rectangle::new([(secs(g.at), lo), (to, hi)], colour.filled())
            });
            chart.draw_series(spans).map_err(|e| draw_err(&e))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("gate {gate}"),
                    (0.0, hi + 1.5),
                    ("sans-serif", 11),
                )))
                .map_err(|e| draw_err(&e))?;
        }

        // The end marker: where traffic turned back, or where blue went.
        if let Some((at, label)) = self.marker() {
            let x = secs(at);
            let colour = if matches!(self.outcome, Some(Outcome::Succeeded)) {
                BLACK
            } else {
                RED
            };
            chart
                .draw_series(LineSeries::new(
                    [(x, 0.0), (x, 100.0)],
                    colour.stroke_width(2),
                ))
                .map_err(|e| draw_err(&e))?;
            let short: String = label.chars().take(90).collect();
            chart
                .draw_series(std::iter::once(Text::new(
                    short,
                    (x, 50.0),
                    ("sans-serif", 12).into_font().color(&colour),
                )))
                .map_err(|e| draw_err(&e))?;
        }

        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|e| draw_err(&e))?;
        root.present().map_err(|e| draw_err(&e))?;
        Ok(())
    }

    /// The metrics canary analysis compared, in the order first judged.
    fn judged_metrics(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for m in self.judgments.iter().flat_map(|j| &j.metrics) {
            if !names.contains(&m.name) {
                names.push(m.name.clone());
            }
        }
        names
    }

    /// One metric's panel: green's and blue's means over each judged bake,
    /// at the judgment's time, and each step's verdict.
    fn draw_metric<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        metric: &str,
        end: f64,
        secs: &dyn Fn(Millis) -> f64,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let points: Vec<(f64, &crate::analysis::assess::MetricLine, &JudgmentPoint)> = self
            .judgments
            .iter()
            .flat_map(|j| {
                j.metrics
                    .iter()
                    .filter(|m| m.name == metric)
                    .map(move |m| (secs(j.at), m, j))
            })
            .collect();
        let high = points
            .iter()
            .map(|(_, m, _)| m.green.max(m.blue))
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE)
            * 1.3;
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{metric}: green vs blue, mean over each judged bake"),
                ("sans-serif", 13),
            )
            .margin(12)
            .x_label_area_size(24)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..end * 1.02, 0.0..high)?;
        chart.configure_mesh().disable_y_mesh().y_labels(4).draw()?;
        let series = |pick: fn(&crate::analysis::assess::MetricLine) -> f64| {
            points
                .iter()
                .map(move |(x, m, _)| (*x, pick(m)))
                .collect::<Vec<_>>()
        };
        chart
            .draw_series(LineSeries::new(series(|m| m.blue), BLUE.stroke_width(2)))?
            .label("blue");
        chart.draw_series(
            series(|m| m.blue)
                .into_iter()
                .map(|p| Circle::new(p, 3, BLUE.filled())),
        )?;
        chart
            .draw_series(LineSeries::new(series(|m| m.green), GREEN.stroke_width(2)))?
            .label("green");
        chart.draw_series(
            series(|m| m.green)
                .into_iter()
                .map(|p| Circle::new(p, 3, GREEN.filled())),
        )?;
        // Each step's verdict beside green's point: this metric's, then the step's.
        chart.draw_series(points.iter().map(|(x, m, j)| {
            let colour = match m.verdict.as_str() {
                "fail" => RED,
                "pass" => BLACK,
                _ => RGBColor(240, 170, 0),
            };
            Text::new(
                format!("step {}: {} ({:?})", j.step, m.verdict, j.outcome).to_lowercase(),
                (*x, m.green.max(m.blue) * 1.12),
                ("sans-serif", 11).into_font().color(&colour),
            )
        }))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        Ok(())
    }

    fn summary_head(&self) -> &'static str {
        self.outcome.as_ref().map_or("in flight", |o| match o {
            Outcome::Succeeded => "succeeded",
            Outcome::RolledBack { .. } => "rolled back",
            Outcome::Halted { .. } => "halted",
        })
    }
}

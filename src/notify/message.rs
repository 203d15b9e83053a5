//! What a notification says: one [`Notification`] per milestone, built from
//! the deployment's events by a [`Story`] that keeps what earlier events
//! told (the revisions, the steps, the weights) so that each message stands
//! on its own.

use crate::analysis::StepOutcome;
use crate::events::{Event, EventKind, Milestone};
use crate::model::{fmt_time, Millis, Weights};
use serde::Serialize;

/// The schema of [`Notification`]: goes up when a field changes meaning or
/// goes away (new fields do not bump it).
pub const SCHEMA: u32 = 1;

/// One notification: the SNS message, the EventBridge event's `detail`, the
/// generic webhook's body (docs/NOTIFICATIONS.md describes each field).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The milestone.
    pub kind: Milestone,
    /// The service.
    pub service: String,
    /// The deployment's id.
    pub deployment: String,
    /// Green's revision, when known.
    pub revision: Option<String>,
    /// Blue's revision, when known.
    pub blue_revision: Option<String>,
    /// When (ms since the Unix epoch).
    pub at: Millis,
    /// When, as RFC 3339.
    pub time: String,
    /// The step (1-based) it concerns, when it concerns one.
    pub step: Option<usize>,
    /// Green's weight of each step.
    pub steps: Vec<u8>,
    /// The weights last read back, when any were set.
    pub weights: Option<Weights>,
    /// What happened, in one line.
    pub text: String,
    /// Why it rolled back or halted, or the analysis summary.
    pub reason: Option<String>,
    /// Who approved, when someone did.
    pub by: Option<String>,
    /// The commands a person may want next.
    pub commands: Commands,
    /// The deployment event it was made from, as `--output json` writes it.
    pub event: Event,
}

/// The exact commands to act on a deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Commands {
    /// `teal status ...`
    pub status: String,
    /// `teal approve ...`, while it waits for approval.
    pub approve: Option<String>,
    /// `teal rollback ...`, until it has ended.
    pub rollback: Option<String>,
}

/// What the events so far have told, to build each notification whole.
#[derive(Debug, Clone)]
pub struct Story {
    service: String,
    config: String,
    revision: Option<String>,
    blue_revision: Option<String>,
    steps: Vec<u8>,
    phase: String,
    weights: Option<Weights>,
    step: Option<usize>,
}

impl Story {
    /// A story of `service`, whose commands name the config file `config`.
    pub fn new(service: impl Into<String>, config: impl Into<String>) -> Story {
        Story {
            service: service.into(),
            config: config.into(),
            revision: None,
            blue_revision: None,
            steps: vec![],
            phase: String::new(),
            weights: None,
            step: None,
        }
    }

    /// Take in `e`; the notification it makes, if it is a milestone.
    pub fn tell(&mut self, e: &Event) -> Option<Notification> {
        self.learn(&e.kind);
        let kind = Milestone::of(&e.kind, self.phase == "shifting")?;
        let mut reason = None;
        let mut by = None;
        let mut step = self.step;
        let what = match &e.kind {
            EventKind::Started {
                strategy,
                steps,
                rolling,
                ..
            } => match rolling {
                true => format!("rolling update ({strategy}) started"),
                false => format!("deployment started ({strategy}: steps {})", percents(steps)),
            },
            EventKind::Resumed {
                phase,
                previous_owner,
                ..
            } => format!(
                "deployment taken up in phase {phase}{}",
                previous_owner
                    .as_ref()
                    .map_or(String::new(), |o| format!(" from {o}"))
            ),
            EventKind::WeightsSet { weights } => format!(
                "step {}: {}% of traffic on green",
                self.of_steps(step),
                weights.green
            ),
            EventKind::AwaitingApproval {
                step: s,
                weight,
                since,
                until,
                on_timeout,
            } => {
                step = Some(*s);
                let until = match (until, on_timeout) {
                    (Some(u), Some(a)) => format!(", until {} (then {a})", fmt_time(*u)),
                    _ => String::new(),
                };
                format!(
                    "step {} ({weight}% green) has baked and waits for approval since {}{until}",
                    self.of_steps(step),
                    fmt_time(*since)
                )
            }
            EventKind::Approved { step: s, by: who } => {
                step = Some(*s);
                by = Some(who.clone());
                format!("step {} approved by {who}", self.of_steps(step))
            }
            EventKind::Judgment {
                step: s,
                outcome,
                summary,
                ..
            } => {
                step = Some(*s);
                reason = Some(summary.clone());
                let verdict = match outcome {
                    StepOutcome::Pass => "pass",
                    StepOutcome::Marginal => "marginal, held for a person",
                    StepOutcome::Fail => "fail",
                };
                format!("analysis of step {}: {verdict}", self.of_steps(step))
            }
            EventKind::Phase { detail, .. } => {
                reason = Some(detail.trim_start_matches("rolling back: ").to_string());
                "rolling back to blue".to_string()
            }
            EventKind::Finished { outcome, .. } => {
                reason = outcome.reason().map(|r| r.to_string());
                match kind {
                    Milestone::Succeeded => "succeeded: green serves 100%, blue retired".into(),
                    Milestone::Halted => "halted: blue serves, green kept for a person".into(),
                    _ => "rolled back: blue serves 100%".into(),
                }
            }
            _ => return None,
        };
        let revision = self.revision.as_deref().unwrap_or("?");
        let mut text = format!("{} {revision}: {what}", self.service);
        if let Some(r) = &reason {
            text = format!("{text}: {r}");
        }
        let open = !matches!(
            kind,
            Milestone::Succeeded | Milestone::RolledBack | Milestone::Halted
        );
        let cmd = |verb: &str| format!("teal {verb} --config {}", self.config);
        Some(Notification {
            schema: SCHEMA,
            kind,
            service: self.service.clone(),
            deployment: e.deployment.clone(),
            revision: self.revision.clone(),
            blue_revision: self.blue_revision.clone(),
            at: e.at,
            time: fmt_time(e.at),
            step,
            steps: self.steps.clone(),
            weights: self.weights,
            text,
            reason,
            by,
            commands: Commands {
                status: cmd("status"),
                approve: (kind == Milestone::AwaitingApproval).then(|| cmd("approve")),
                rollback: open.then(|| cmd("rollback")),
            },
            event: e.clone(),
        })
    }

    /// Keep what `kind` tells of the deployment.
    fn learn(&mut self, kind: &EventKind) {
        match kind {
            EventKind::Started {
                service,
                revision,
                blue_revision,
                steps,
                ..
            }
            | EventKind::Resumed {
                service,
                revision,
                blue_revision,
                steps,
                ..
            } => {
                self.service = service.clone();
                self.revision = Some(revision.clone());
                self.blue_revision = blue_revision.clone();
                self.steps = steps.clone();
                self.phase = match kind {
                    EventKind::Resumed { phase, .. } => phase.clone(),
                    _ => "provisioning".into(),
                };
            }
            EventKind::Phase { to, .. } => self.phase = to.clone(),
            EventKind::WeightsSet { weights } => {
                self.weights = Some(*weights);
                if self.phase == "shifting" {
                    // Steps rise, so a weight names its step.
                    self.step = self
                        .steps
                        .iter()
                        .position(|w| *w == weights.green)
                        .map(|i| i + 1);
                }
            }
            _ => {}
        }
    }

    /// `2/3`, or `2` when the plan is not known.
    fn of_steps(&self, step: Option<usize>) -> String {
        match (step, self.steps.len()) {
            (Some(s), 0) => s.to_string(),
            (Some(s), n) => format!("{s}/{n}"),
            (None, _) => "?".into(),
        }
    }
}

fn percents(steps: &[u8]) -> String {
    steps
        .iter()
        .map(|w| format!("{w}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Outcome, Reason};
    use crate::model::Slot;

    fn at(kind: EventKind) -> Event {
        Event {
            at: 1_796_000_000_000,
            deployment: "d-1".into(),
            kind,
        }
    }

    #[test]
    fn a_canary_tells_its_milestones_and_nothing_else() {
        let mut story = Story::new("web", "teal.toml");
        let events = [
            EventKind::Started {
                service: "web".into(),
                revision: "v2".into(),
                blue_revision: Some("v1".into()),
                green_slot: Slot::B,
                strategy: "canary".into(),
                steps: vec![10, 50, 100],
                rolling: false,
            },
            EventKind::Provisioning { desired: 2 },
            EventKind::Phase {
                from: "provisioning".into(),
                to: "shifting".into(),
                detail: "step 1/3: 10% to green".into(),
            },
            EventKind::WeightsSet {
                weights: Weights::to_green(10),
            },
            EventKind::AwaitingApproval {
                step: 1,
                weight: 10,
                since: 1_796_000_000_000,
                until: None,
                on_timeout: None,
            },
            EventKind::Phase {
                from: "shifting".into(),
                to: "rolling_back".into(),
                detail: "rolling back: gate \"web-5xx\" is ALARM".into(),
            },
            EventKind::WeightsSet {
                weights: Weights::to_green(0),
            },
            EventKind::Finished {
                outcome: Outcome::RolledBack {
                    reason: Reason::Operator {
                        command: "rollback".into(),
                        at: 0,
                    },
                },
                calls: Default::default(),
            },
        ];
        let told: Vec<Notification> = events
            .into_iter()
            .filter_map(|k| story.tell(&at(k)))
            .collect();
        let kinds: Vec<&str> = told.iter().map(|n| n.kind.name()).collect();
        // The rollback's weights are no step.
        assert_eq!(
            kinds,
            [
                "started",
                "step",
                "awaiting_approval",
                "rolling_back",
                "rolled_back"
            ]
        );
        assert_eq!(told[1].text, "web v2: step 1/3: 10% of traffic on green");
        assert_eq!(told[2].step, Some(1));
        assert_eq!(
            told[2].commands.approve.as_deref(),
            Some("teal approve --config teal.toml")
        );
        assert_eq!(told[3].reason.as_deref(), Some("gate \"web-5xx\" is ALARM"));
        assert_eq!(told[4].commands.rollback, None, "it has ended");
        assert_eq!(told[4].weights, Some(Weights::to_green(0)));
        assert_eq!(told[4].blue_revision.as_deref(), Some("v1"));
    }

    #[test]
    fn the_documented_fields_are_the_serialized_ones() {
        let doc = include_str!("../../docs/NOTIFICATIONS.md");
        let table = doc
            .split("| field | what |")
            .nth(1)
            .expect("the field table");
        let mut documented: Vec<String> = vec![];
        for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
            let names = row.split('|').nth(1).unwrap();
            documented.extend(
                names
                    .split(',')
                    .map(|n| n.trim().trim_matches('`').to_string()),
            );
        }
        let mut story = Story::new("web", "teal.toml");
        let n = story
            .tell(&at(EventKind::Finished {
                outcome: Outcome::Succeeded,
                calls: Default::default(),
            }))
            .unwrap();
        let value = serde_json::to_value(&n).unwrap();
        let mut serialized: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        documented.sort();
        serialized.sort();
        assert_eq!(documented, serialized);
        let kinds = doc.split("| kind | when |").nth(1).unwrap();
        let listed: Vec<&str> = kinds
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.split('`').nth(1).unwrap())
            .collect();
        let all: Vec<&str> = Milestone::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(listed, all);
    }
}

//! The shared vocabulary: slots, roles, weights, time and fleet/gate readings.
//!
//! These types cross every boundary (engine, ports, ledger, CLI), so they are
//! small, `Copy` where possible, and serialisable.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An RFC 3339 UTC timestamp, to the second.
pub fn fmt_time(at: Millis) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(at))
        .to_string()
}

/// Milliseconds since the Unix epoch. The engine never reads a clock; every
/// time it sees arrives as a `Millis` from the driver.
pub type Millis = u64;

/// Render a millisecond duration the way people write them (`5m`, `1m 30s`).
pub fn fmt_ms(ms: Millis) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
}

/// One of the two fixed traffic targets of a router (target group A/B,
/// record set A/B). Slots are physical; roles alternate between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// The first configured target (target group / record set).
    A,
    /// The second configured target.
    B,
}

impl Slot {
    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// Both slots, in order.
    pub const BOTH: [Slot; 2] = [Slot::A, Slot::B];

    /// Index 0 for A, 1 for B.
    pub fn index(self) -> usize {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::A => "a",
            Slot::B => "b",
        })
    }
}

/// Traffic split between the two *roles*, in percent of traffic.
///
/// Invariant (enforced by the constructors): `blue + green == 100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    /// Percent of traffic on blue, the revision live before the deployment.
    pub blue: u8,
    /// Percent of traffic on green, the candidate.
    pub green: u8,
}

impl Weights {
    /// All traffic on blue.
    pub const ALL_BLUE: Weights = Weights {
        blue: 100,
        green: 0,
    };
    /// All traffic on green.
    pub const ALL_GREEN: Weights = Weights {
        blue: 0,
        green: 100,
    };

    /// `green` percent to green, the rest to blue. Panics above 100: callers
    /// pass validated percentages only.
    pub fn to_green(green: u8) -> Weights {
        assert!(green <= 100, "green weight {green} above 100");
        Weights {
            blue: 100 - green,
            green,
        }
    }

    /// Place these role weights onto slots, given which slot green occupies.
    ///
    /// ```
    /// use teal::model::{Slot, SlotWeights, Weights};
    /// let w = Weights::to_green(25).on_slots(Slot::A);
    /// assert_eq!(w, SlotWeights { a: 25, b: 75 });
    /// assert_eq!(w.as_roles(Slot::A), Weights { blue: 75, green: 25 });
    /// ```
    pub fn on_slots(self, green_slot: Slot) -> SlotWeights {
        let mut w = SlotWeights { a: 0, b: 0 };
        w.set(green_slot, self.green);
        w.set(green_slot.other(), self.blue);
        w
    }
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blue {}% / green {}%", self.blue, self.green)
    }
}

/// Weights as a router holds them: per physical slot, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotWeights {
    /// Percent on slot A.
    pub a: u8,
    /// Percent on slot B.
    pub b: u8,
}

impl SlotWeights {
    /// The weight of one slot.
    pub fn get(self, slot: Slot) -> u8 {
        match slot {
            Slot::A => self.a,
            Slot::B => self.b,
        }
    }

    /// Set the weight of one slot.
    pub fn set(&mut self, slot: Slot, w: u8) {
        match slot {
            Slot::A => self.a = w,
            Slot::B => self.b = w,
        }
    }

    /// Valid for a percent router: each at most 100, together exactly 100.
    pub fn is_valid(self) -> bool {
        self.a <= 100 && self.b <= 100 && u16::from(self.a) + u16::from(self.b) == 100
    }

    /// Read these slot weights as role weights, given green's slot.
    pub fn as_roles(self, green_slot: Slot) -> Weights {
        Weights {
            blue: self.get(green_slot.other()),
            green: self.get(green_slot),
        }
    }

    /// The slot holding all traffic, if one does.
    pub fn full_slot(self) -> Option<Slot> {
        Slot::BOTH.into_iter().find(|s| self.get(*s) == 100)
    }
}

impl fmt::Display for SlotWeights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {}% / b {}%", self.a, self.b)
    }
}

/// Where an in-place rolling update of one revision stands, as the platform
/// (an ECS deployment, an Auto Scaling instance refresh) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rollout", rename_all = "snake_case")]
pub enum RolloutState {
    /// No rollout of this revision has started (since the deployment began).
    NotStarted,
    /// Replacing instances or tasks.
    InProgress {
        /// Percent done, when the platform says.
        percent: Option<u8>,
        /// The platform's words.
        detail: String,
    },
    /// Everything runs the revision and the platform calls it done.
    Completed,
    /// The previous revision is being put back (the platform's own
    /// rollback, or the one teal asked for).
    RollingBack {
        /// The platform's words.
        detail: String,
    },
    /// The previous revision is back.
    RolledBack {
        /// The platform's words: why it rolled back.
        detail: String,
    },
    /// Stopped part-way without putting the previous revision back.
    Stopped {
        /// The platform's words.
        detail: String,
    },
    /// The rollout failed part-way: instances may run either revision.
    Failed {
        /// The platform's words.
        detail: String,
    },
    /// Putting the previous revision back failed: only a person can say
    /// what the fleet should run now.
    RevertFailed {
        /// The platform's words.
        detail: String,
    },
}

/// What a fleet port reports about the compute in one slot.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FleetStatus {
    /// Whether a fleet (ECS service, Auto Scaling group, processes) exists in the slot.
    pub exists: bool,
    /// The revision it runs, when it exists.
    pub revision: Option<String>,
    /// How many instances/tasks it should run.
    pub desired: u32,
    /// How many are running *and* healthy in the slot's target group.
    pub healthy: u32,
    /// Its name where the provider names it (the ECS service, the Auto
    /// Scaling group), for canary analysis's `{service}` and `{group}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl FleetStatus {
    /// No fleet in the slot.
    pub fn absent() -> FleetStatus {
        FleetStatus::default()
    }

    /// Every desired instance is healthy (and there is at least one).
    pub fn fully_healthy(&self) -> bool {
        self.exists && self.desired > 0 && self.healthy >= self.desired
    }
}

/// The state of one gate, in CloudWatch's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GateState {
    /// The gate holds.
    Ok,
    /// The gate has failed.
    Alarm,
    /// Not enough data to judge.
    InsufficientData,
}

impl fmt::Display for GateState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GateState::Ok => "OK",
            GateState::Alarm => "ALARM",
            GateState::InsufficientData => "INSUFFICIENT_DATA",
        })
    }
}

/// One gate as read by a gate port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateReading {
    /// The gate's name (the alarm name for CloudWatch).
    pub name: String,
    /// Its state now.
    pub state: GateState,
    /// Why it is in that state (CloudWatch's state reason).
    pub reason: String,
    /// When it entered that state.
    pub since: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_weights_round_trip_through_slots() {
        for green_slot in Slot::BOTH {
            for g in [0u8, 10, 55, 100] {
                let w = Weights::to_green(g);
                let s = w.on_slots(green_slot);
                assert!(s.is_valid());
                assert_eq!(s.get(green_slot), g);
                assert_eq!(s.as_roles(green_slot), w);
            }
        }
    }

    #[test]
    fn slot_weights_validity() {
        assert!(SlotWeights { a: 100, b: 0 }.is_valid());
        assert!(!SlotWeights { a: 0, b: 0 }.is_valid());
        assert!(!SlotWeights { a: 60, b: 60 }.is_valid());
        assert!(!SlotWeights { a: 200, b: 0 }.is_valid());
        assert_eq!(SlotWeights { a: 0, b: 100 }.full_slot(), Some(Slot::B));
        assert_eq!(SlotWeights { a: 50, b: 50 }.full_slot(), None);
    }
}

/// A rolling update's state in words, for progress lines and `teal status`.
impl fmt::Display for RolloutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RolloutState as R;
        let said = |d: &str| {
            if d.is_empty() {
                String::new()
            } else {
                format!(": {d}")
            }
        };
        match self {
            R::NotStarted => write!(
                f,
                "rolling update: not under way; the previous revision runs"
            ),
            R::InProgress { percent, detail } => write!(
                f,
                "rolling update in progress{}{}",
                percent.map_or(String::new(), |p| format!(" ({p}%)")),
                said(detail)
            ),
            R::Completed => write!(f, "rolling update completed"),
            R::RollingBack { detail } => write!(f, "rolling update: rolling back{}", said(detail)),
            R::RolledBack { detail } => write!(f, "rolling update: rolled back{}", said(detail)),
            R::Stopped { detail } => write!(f, "rolling update: stopped{}", said(detail)),
            R::Failed { detail } => write!(f, "rolling update: FAILED{}", said(detail)),
            R::RevertFailed { detail } => write!(
                f,
                "rolling update: putting the previous revision back FAILED{}",
                said(detail)
            ),
        }
    }
}

/// How a gate's `INSUFFICIENT_DATA` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsufficientData {
    /// As OK (CloudWatch's default for new alarms; the deployment goes on).
    Ok,
    /// As ALARM (the deployment rolls back).
    Alarm,
}

/// A deployment's green as the ports that make it are told: every call that
/// creates or updates it carries it, so ports are built before anyone knows
/// what green runs (a command that reads the record first builds them once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Green {
    /// The revision label (`v2`, an image tag, an AMI id).
    pub revision: String,
    /// What green runs, in the record's words (`image=...`, `ami=...`),
    /// decoded by the fleet's adapter; `None` when nothing was given.
    pub runs: Option<String>,
    /// When the deployment began: what the platform did before is history.
    pub since: Millis,
}

impl Green {
    /// A green known by its revision only (the local provider's, which
    /// runs the configured command with the revision in its environment).
    pub fn named(revision: impl Into<String>) -> Green {
        Green {
            revision: revision.into(),
            ..Green::default()
        }
    }
}

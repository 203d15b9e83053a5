//! The demo's traffic view: each second, each revision's weight, request
//! rate and error rate. In a log (plain mode) one line a second; on a
//! terminal, bars redrawn in place (indicatif), with the deployment's event
//! lines printed above them so that nothing draws over anything else.

use super::progress::Mode;
use crate::local::api::SlotStats;
use crate::model::Slot;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Requests per second and the share that failed, from two readings of a
/// slot's counters a second apart (a counter that went back, as when a
/// slot's fleet is replaced, starts over from zero).
pub fn rates(before: (u64, u64), now: (u64, u64), seconds: f64) -> (f64, f64) {
    let requests = now.0.checked_sub(before.0).unwrap_or(now.0);
    let failed = now.1.checked_sub(before.1).unwrap_or(now.1).min(requests);
    let per_second = requests as f64 / seconds.max(1e-3);
    let failed_pct = if requests == 0 {
        0.0
    } else {
        100.0 * failed as f64 / requests as f64
    };
    (per_second, failed_pct)
}

/// One slot's line: its revision, weight, request rate and error rate.
pub fn slot_text(s: &SlotStats, per_second: f64, failed_pct: f64) -> String {
    format!(
        "{:<14} {:>3}%  {:>6.0} req/s  {:>5.1}% failed",
        s.revision.as_deref().unwrap_or("-"),
        s.weight,
        per_second,
        failed_pct
    )
}

/// The bars, on a terminal.
struct Bars {
    multi: MultiProgress,
    /// Green's share of traffic, 0..=100.
    weights: ProgressBar,
    /// Each slot's request rate (length: the busiest second so far), with
    /// its error rate in the message.
    slots: [ProgressBar; 2],
}

impl Bars {
    fn new() -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let style = |template: &str| {
            ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("█▓░")
        };
        let weights = multi.add(ProgressBar::new(100));
        weights.set_style(style("  weights  blue [{bar:40.blue/green}] green  {msg}"));
        let slots = [Slot::A, Slot::B].map(|_| {
            let bar = multi.add(ProgressBar::new(1));
            bar.set_style(style("  {prefix:>7}  [{bar:40.cyan/white}] {msg}"));
            bar
        });
        Bars {
            multi,
            weights,
            slots,
        }
    }
}

/// The view: lines in a log, bars on a terminal.
pub struct Traffic {
    bars: Option<Bars>,
    last: [(u64, u64); 2],
    busiest: u64,
}

impl Traffic {
    /// A view for `mode`.
    pub fn new(mode: Mode) -> Traffic {
        Traffic {
            bars: matches!(mode, Mode::Live { .. }).then(Bars::new),
            last: [(0, 0); 2],
            busiest: 1,
        }
    }

    /// Print a line (an event, a note) above the bars, or as it is.
    pub fn line(&self, text: &str) {
        match &self.bars {
            Some(b) => {
                let _ = b.multi.println(text);
            }
            None => println!("{text}"),
        }
    }

    /// A second's reading of the slots; `instances`: what runs where, for a
    /// rolling update (one slot, many revisions).
    pub fn update(&mut self, at: &str, stats: &[SlotStats], instances: Option<String>) {
        let mut texts = Vec::new();
        for s in stats {
            let i = s.slot.index();
            let (per_second, failed_pct) = rates(self.last[i], (s.requests, s.failed), 1.0);
            self.last[i] = (s.requests, s.failed);
            self.busiest = self.busiest.max(per_second as u64);
            texts.push((i, per_second, slot_text(s, per_second, failed_pct), s));
        }
        match &self.bars {
            None => {
                if let Some(line) = instances {
                    println!("{at}    instances  {line}");
                }
                let line: Vec<&str> = texts
                    .iter()
                    .filter(|t| t.3.revision.is_some())
                    .map(|t| t.2.as_str())
                    .collect();
                println!("{at}    traffic  {}", line.join(" | "));
            }
            Some(b) => {
                let green = stats
                    .iter()
                    .filter(|s| s.revision.is_some())
                    .map(|s| s.weight)
                    .collect::<Vec<_>>();
                if let [blue, green] = green[..] {
                    b.weights.set_position(u64::from(green));
                    b.weights.set_message(format!("{blue}% / {green}%"));
                }
                for (i, per_second, text, s) in texts {
                    let bar = &b.slots[i];
                    bar.set_prefix(format!("slot {}", s.slot));
                    bar.set_length(self.busiest);
                    bar.set_position(per_second as u64);
                    bar.set_message(match (&instances, i) {
                        (Some(line), 0) => format!("{text}  ({line})"),
                        _ => text,
                    });
                }
            }
        }
    }

    /// Take the bars off the screen (the event lines stay).
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.weights.finish_and_clear();
            for s in &b.slots {
                s.finish_and_clear();
            }
            let _ = b.multi.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_the_counters_difference_over_the_second() {
        assert_eq!(rates((100, 5), (300, 15), 1.0), (200.0, 5.0));
        assert_eq!(
            rates((100, 5), (100, 5), 1.0),
            (0.0, 0.0),
            "no requests, no errors"
        );
        // A slot whose fleet was replaced starts its counters over.
        assert_eq!(rates((500, 50), (40, 4), 1.0), (40.0, 10.0));
    }

    #[test]
    fn a_slots_text_names_its_revision_weight_and_rates() {
        let s = SlotStats {
            slot: Slot::B,
            revision: Some("v2+fail=0.3".into()),
            weight: 10,
            requests: 0,
            failed: 0,
        };
        assert_eq!(
            slot_text(&s, 123.4, 30.0),
            "v2+fail=0.3     10%     123 req/s   30.0% failed"
        );
    }
}

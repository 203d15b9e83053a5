//! Releases: several services deployed as one, in ordered waves.
//!
//! A release file names each member's `teal.toml`, groups them into waves
//! with a `max_parallel` each, and says what a failure does. This module
//! reads and validates it ([`file`]); every error names the file, line,
//! column and field, and is found before any cloud call.
//!
//! Layout:
//!
//! - [`file`]: the raw TOML, validated into a [`Release`], and how one
//!   `imagedefinitions.json` is split among the members.
//! - [`schedule`]: the wave scheduler, pure: which member starts, which goes
//!   back, and the release's outcome (also worked out from the members'
//!   records, on any machine).
//! - [`runner`]: one process, one driver per member on a task of its own,
//!   started and sent back as the schedule decides.

pub mod file;
pub mod runner;
pub mod schedule;

pub use file::{Member, OnFailure, Release, Wave};

//! Exit codes: stable, documented in the README, the same for every command.

use crate::config::ConfigError;
use crate::driver::DriverError;
use crate::engine::{Outcome, Reason};

/// What a `teal` process reports to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// 0: succeeded (or a read-only command did its job).
    Succeeded = 0,
    /// 1: unexpected error (a cloud call kept failing; the record stays for `teal resume`).
    Unexpected = 1,
    /// 2: bad input: usage, config, strategy, preflight.
    BadInput = 2,
    /// 3: rolled back by a gate (or by an operator).
    RolledBack = 3,
    /// 4: timed out: green did not become healthy in time (and was rolled back).
    TimedOut = 4,
    /// 5: refused: another deployment holds the service.
    Refused = 5,
    /// 6: halted: blue takes all traffic, and something needs a person.
    Halted = 6,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The exit for a deployment's outcome.
    pub fn for_outcome(outcome: &Outcome) -> Exit {
        match outcome {
            Outcome::Succeeded => Exit::Succeeded,
            Outcome::RolledBack {
                reason: Reason::GreenNeverHealthy { .. },
            } => Exit::TimedOut,
            Outcome::RolledBack { .. } => Exit::RolledBack,
            Outcome::Halted { .. } => Exit::Halted,
        }
    }

    /// The exit for a driver error.
    pub fn for_driver_error(e: &DriverError) -> Exit {
        match e {
            DriverError::Preflight { .. } | DriverError::NoDeployment | DriverError::Refused(_) => {
                Exit::BadInput
            }
            DriverError::LockHeld { .. }
            | DriverError::InFlight { .. }
            | DriverError::LockLost(_) => Exit::Refused,
            DriverError::Port(_) => Exit::Unexpected,
        }
    }

    /// The exit for a config error: always bad input.
    pub fn for_config_error(_: &ConfigError) -> Exit {
        Exit::BadInput
    }
}

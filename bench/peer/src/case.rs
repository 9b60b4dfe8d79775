//! What a case is to the driver: a loop that runs `iters` iterations and times itself.

use std::time::Instant;

/// Runs `iters` iterations and returns the elapsed nanoseconds.
pub type TimedLoop = Box<dyn FnMut(u64) -> f64>;

/// An open case: the vm-memory call it measures, and its loop (which owns the case's memory).
pub struct Case {
    pub op: String,
    pub run: TimedLoop,
    /// Checks run when the case is closed (e.g. that dirty tracking logged every page).
    pub on_close: Option<Box<dyn FnOnce() -> Result<(), String>>>,
}

impl Case {
    pub fn new(op: impl Into<String>, run: impl FnMut(u64) -> f64 + 'static) -> Self {
        Case { op: op.into(), run: Box::new(run), on_close: None }
    }
}

/// Nanoseconds since `t0`, as the Deno harness counts them (a float).
#[inline(always)]
pub fn elapsed_ns(t0: Instant) -> f64 {
    t0.elapsed().as_nanos() as f64
}

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;
pub const PAGE: u64 = 4 * KIB;
/// Each of the workload's two regions: [0, 256 MiB) and [256 MiB, 512 MiB).
pub const REGION: u64 = 256 * MIB;

//! What a case is to the driver: a loop that runs `iters` iterations and times itself.

use std::ops::{Deref, DerefMut};
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

/// Where every case's own buffer starts: a cache line. The Deno side's buffers start there too
/// (bench/guest_memory_fixture.ts `alignedBytes`); a 4 KiB copy's time moves by ~20 ns with where its
/// buffer falls in a cache line, which an allocator would otherwise pick differently per side.
pub const BUFFER_ALIGN: usize = 64;

/// A buffer of `len` bytes at a [`BUFFER_ALIGN`] boundary, used as a `[u8]`.
pub struct AlignedBuf {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    pub fn new(len: usize, fill: u8) -> Self {
        let bytes = vec![fill; len + BUFFER_ALIGN];
        let start = bytes.as_ptr().align_offset(BUFFER_ALIGN);
        AlignedBuf { bytes, start, len }
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + self.len]
    }
}

//! vm-memory workload's address generator (perf-baselines.md), the same as bench/lcg.ts: the
//! 64-bit LCG from seed 0x243F6A8885A308D3, of which an address uses the high 32 bits.

const MUL: u64 = 6364136223846793005;
const ADD: u64 = 1442695040888963407;
const SEED: u64 = 0x243F_6A88_85A3_08D3;

pub struct Lcg(u64);

impl Lcg {
    pub fn new() -> Self {
        Lcg(SEED)
    }

    /// Steps once and returns the high 32 bits of the new state.
    #[inline(always)]
    pub fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(MUL).wrapping_add(ADD);
        (self.0 >> 32) as u32
    }
}

/// The mask that turns `next()` into an offset in `[0, span)` aligned to `align` (powers of two).
pub fn mask(span: u64, align: u64) -> u32 {
    assert!(span.is_power_of_two() && align.is_power_of_two() && align <= span && span <= 1 << 32);
    ((span - 1) & !(align - 1)) as u32
}

/// The sum of the high words of the first `n` states: the Deno side checks it against its own.
pub fn sum(n: u64) -> u64 {
    let mut g = Lcg::new();
    (0..n).map(|_| u64::from(g.next())).sum()
}

//! The IOTLB cases of bench/iommu.ts on vm-memory's `Iotlb`: the same tables, the same LCG
//! addresses. vm-memory has one lookup (an iterator over the mapped ranges), so a case and its
//! `_ranges` variant run the same Rust loop.

use std::hint::black_box;
use std::time::Instant;

use vm_memory::{GuestAddress, Iotlb, Permissions};

use crate::case::{elapsed_ns, Case, GIB, KIB, MIB, PAGE, REGION};
use crate::lcg::{mask, Lcg};

const TABLE_SPAN: u64 = 512 * MIB;
const HOT_BASE: u64 = MIB;
const HOT_SPAN: u64 = 64 * KIB;
const SET_SPAN: u64 = GIB;
const SPARSE_ROUND: u64 = 131072;

fn set(tlb: &mut Iotlb, iova: u64, target: u64, length: u64) {
    tlb.set_mapping(GuestAddress(iova), GuestAddress(target), length as usize, Permissions::ReadWrite)
        .expect("Iotlb::set_mapping");
}

/// Identity: page i to page i (merges into one entry); swapped: page i to page i ^ 1.
fn build_table(swapped: bool) -> Iotlb {
    let mut tlb = Iotlb::new();
    for i in 0..TABLE_SPAN / PAGE {
        set(&mut tlb, i * PAGE, (if swapped { i ^ 1 } else { i }) * PAGE, PAGE);
    }
    tlb
}

/// Where `iova` must land: the check that the table is the one the Deno case builds.
fn expected(swapped: bool, iova: u64) -> u64 {
    if swapped {
        ((iova / PAGE) ^ 1) * PAGE + iova % PAGE
    } else {
        iova
    }
}

/// A reference of its own type, so that this check instantiates `Iotlb::lookup` separately and
/// the timed loop stays the only caller of its copy (see solo.rs for why that matters).
struct CheckRef<'a>(&'a Iotlb);

impl std::ops::Deref for CheckRef<'_> {
    type Target = Iotlb;
    fn deref(&self) -> &Iotlb {
        self.0
    }
}

fn translate(tlb: &Iotlb, iova: u64) -> u64 {
    match Iotlb::lookup(CheckRef(tlb), GuestAddress(iova), 8, Permissions::Read) {
        Ok(mut ranges) => ranges.next().map_or(u64::MAX, |r| r.base.0),
        Err(_) => u64::MAX,
    }
}

fn lookup(swapped: bool, wide: bool) -> Case {
    let tlb = build_table(swapped);
    let base = if wide { 0 } else { HOT_BASE };
    let m = mask(if wide { REGION } else { HOT_SPAN }, 8);
    let mut g = Lcg::new();
    for _ in 0..1000 {
        let iova = base + u64::from(g.next() & m);
        assert_eq!(translate(&tlb, iova), expected(swapped, iova), "lookup of {iova:#x}");
    }
    Case::new("Iotlb::lookup(&tlb, iova, 8, Read), first range", move |iters| {
        let tlb = black_box(&tlb);
        let mut g = Lcg::new();
        let mut acc = 0u64;
        let t0 = Instant::now();
        for _ in 0..iters {
            let iova = GuestAddress(base + u64::from(g.next() & m));
            let mut ranges = Iotlb::lookup(tlb, iova, 8, Permissions::Read).unwrap();
            acc = acc.wrapping_add(ranges.next().unwrap().base.0);
        }
        let ns = elapsed_ns(t0);
        black_box(acc);
        ns
    })
}

/// Re-maps one of the 131072 even pages of [0, 1 GiB) per iteration; odd pages stay unmapped so
/// nothing merges and the table keeps its size (bench/iommu.ts, setMappingCase).
fn set_mapping_4k() -> Case {
    let mut tlb = Iotlb::new();
    for i in 0..SET_SPAN / (2 * PAGE) {
        set(&mut tlb, 2 * i * PAGE, (i ^ 1) * PAGE, PAGE);
    }
    let m = mask(SET_SPAN, 2 * PAGE);
    Case::new("tlb.set_mapping(iova, target, 4096, RW)", move |iters| {
        let tlb = black_box(&mut tlb);
        let mut g = Lcg::new();
        let t0 = Instant::now();
        for i in 0..iters {
            let a = u64::from(g.next() & m);
            set(tlb, a, a / 2 + (i & 1) * GIB, PAGE);
        }
        elapsed_ns(t0)
    })
}

/// Page p of the LCG (its high 32 bits) to p + 1 if p is even, p - 1 if odd: never merges.
fn insert_sparse(tlb: &mut Iotlb, count: u64) {
    let mut g = Lcg::new();
    for _ in 0..count {
        let high = g.next();
        let a = u64::from(high) * PAGE;
        set(tlb, a, if high & 1 == 0 { a + PAGE } else { a - PAGE }, PAGE);
    }
}

/// Whole rounds of 131072 inserts into an empty table; the figure is the time of the rounds over
/// their inserts (the table is dropped outside the timing, as the Deno side's is collected).
fn set_mapping_4k_sparse() -> Case {
    Case::new("tlb.set_mapping(new page, target, 4096, RW)", move |iters| {
        let (mut ns, mut done) = (0.0, 0u64);
        loop {
            let mut tlb = Iotlb::new();
            let t0 = Instant::now();
            insert_sparse(black_box(&mut tlb), SPARSE_ROUND);
            ns += elapsed_ns(t0);
            done += SPARSE_ROUND;
            drop(black_box(tlb));
            if done >= iters {
                break;
            }
        }
        ns * iters as f64 / done as f64
    })
}

/// The case called `name` in bench/iommu.ts, or None.
pub fn open(name: &str) -> Option<Case> {
    Some(match name.strip_suffix("_ranges").unwrap_or(name) {
        "iotlb_lookup_8b_hot_identity" => lookup(false, false),
        "iotlb_lookup_8b_hot_swapped" => lookup(true, false),
        "iotlb_lookup_8b_wide_swapped" => lookup(true, true),
        "iotlb_set_mapping_4k" => set_mapping_4k(),
        "iotlb_set_mapping_4k_sparse" => set_mapping_4k_sparse(),
        _ => return None,
    })
}

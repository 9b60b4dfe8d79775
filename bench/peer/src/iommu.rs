//! The IommuMemory cases of bench/iommu_memory.ts on vm-memory's `IommuMemory`. vm-memory 0.18
//! ships the `Iommu` trait but no IOMMU, so this is the smallest one: an `Iotlb` behind a
//! read-write lock whose `translate` is a lookup (perf-baselines.md measured the same setup).

use std::hint::black_box;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::Instant;

use vm_memory::bitmap::{Bitmap, NewBitmap};
use vm_memory::iommu::{Error, IotlbIterator, IovaRange};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, Iommu, IommuMemory, Iotlb, Permissions};

use crate::case::{elapsed_ns, AlignedBuf, Case, GIB, KIB, MIB, PAGE, REGION};
use crate::lcg::{mask, Lcg};
use crate::solo::Solo;

const HOT_BASE: u64 = MIB;
const HOT_SPAN: u64 = 64 * KIB;
const HOT_4K_SPAN: u64 = 256 * KIB;

#[derive(Debug, Default)]
struct LockedIotlb {
    iotlb: RwLock<Iotlb>,
}

impl Iommu for LockedIotlb {
    type IotlbGuard<'a> = RwLockReadGuard<'a, Iotlb>;

    #[inline]
    fn translate(
        &self,
        iova: GuestAddress,
        length: usize,
        access: Permissions,
    ) -> Result<IotlbIterator<Self::IotlbGuard<'_>>, Error> {
        let guard = self
            .iotlb
            .read()
            .map_err(|_| Error::IommuMisconfigured { reason: "the IOTLB lock is poisoned".into() })?;
        Iotlb::lookup(guard, iova, length, access).map_err(|fails| Error::CannotResolve {
            iova_range: IovaRange { base: iova, length },
            reason: format!("{} unmapped, {} refused", fails.misses.len(), fails.access_fails.len()),
        })
    }
}

type Memory<B> = IommuMemory<GuestMemoryMmap<B>, LockedIotlb>;

#[derive(Clone, Copy, PartialEq)]
enum Table {
    Passthrough,
    Identity4k,
    Swapped4k,
}

/// [0, 256 MiB) and [256 MiB, 512 MiB), every page touched (the Deno side maps them populated).
fn physical<B: NewBitmap + Bitmap>() -> GuestMemoryMmap<B> {
    let mem = GuestMemoryMmap::<B>::from_ranges(&[
        (GuestAddress(0), REGION as usize),
        (GuestAddress(REGION), REGION as usize),
    ])
    .expect("mapping the two 256 MiB regions");
    for r in mem.iter() {
        // SAFETY: the mapping is r.size() bytes long, owned by `mem` and not shared yet.
        unsafe { std::ptr::write_bytes(r.as_ptr(), 0, r.size()) };
    }
    mem
}

fn iommu_for(table: Table) -> LockedIotlb {
    let iommu = LockedIotlb::default();
    {
        let mut tlb = iommu.iotlb.write().unwrap();
        if table != Table::Passthrough {
            for i in 0..(2 * REGION) / PAGE {
                let target = if table == Table::Swapped4k { i ^ 1 } else { i };
                tlb.set_mapping(GuestAddress(i * PAGE), GuestAddress(target * PAGE), PAGE as usize, Permissions::ReadWrite)
                    .unwrap();
            }
        }
    }
    iommu
}

/// The table must send `iova` where the Deno case's table does. Asked of the IOMMU rather than
/// read through `IommuMemory`, so that the timed loop stays the only caller of the read path.
fn check_translation<B: Bitmap>(mem: &Memory<B>, table: Table, iova: u64) {
    let phys = if table == Table::Swapped4k { ((iova / PAGE) ^ 1) * PAGE + iova % PAGE } else { iova };
    let got = if table == Table::Passthrough {
        iova
    } else {
        let mut ranges = mem.iommu().translate(GuestAddress(iova), 8, Permissions::Read).expect("translate");
        ranges.next().expect("one range").base.0
    };
    assert_eq!(got, phys, "translation of IOVA {iova:#x}");
}

fn read_u64<B: NewBitmap + Bitmap + 'static>(table: Table, wide: bool) -> Case {
    let mem = IommuMemory::new(physical::<B>(), iommu_for(table), table != Table::Passthrough, B::default());
    check_translation(&mem, table, HOT_BASE + 8);
    let base = if wide { 0 } else { HOT_BASE };
    let m = mask(if wide { REGION } else { HOT_SPAN }, 8);
    Case::new("iommu_mem.read_obj::<u64>(iova)", move |iters| {
        let mem = black_box(&mem);
        let mut g = Lcg::new();
        let mut acc = 0u64;
        let t0 = Instant::now();
        for _ in 0..iters {
            acc ^= mem.read_obj::<u64>(GuestAddress(base + u64::from(g.next() & m))).unwrap();
        }
        let ns = elapsed_ns(t0);
        black_box(acc);
        ns
    })
}

fn read_slice_4k<B: NewBitmap + Bitmap + 'static>() -> Case {
    let mem = IommuMemory::new(physical::<B>(), iommu_for(Table::Swapped4k), true, B::default());
    check_translation(&mem, Table::Swapped4k, HOT_BASE + PAGE);
    let m = mask(HOT_4K_SPAN, PAGE);
    let mut buf = AlignedBuf::new(PAGE as usize, 0);
    Case::new("iommu_mem.read_slice(&mut buf, iova), 4 KiB", move |iters| {
        let mem = black_box(&mem);
        let mut g = Lcg::new();
        let t0 = Instant::now();
        for _ in 0..iters {
            mem.read_slice(&mut buf, GuestAddress(HOT_BASE + u64::from(g.next() & m))).unwrap();
        }
        let ns = elapsed_ns(t0);
        black_box(buf[7]);
        ns
    })
}

/// 64 KiB at IOVA 1 GiB: 16 pages at physical 64 MiB + 3 i pages, or one 64 KiB entry at 64 MiB.
fn read_slice_64k<B: NewBitmap + Bitmap + 'static>(fragmented: bool) -> Case {
    let (iova, phys0, size) = (GIB, 64 * MIB, 64 * KIB);
    let iommu = LockedIotlb::default();
    {
        let mut tlb = iommu.iotlb.write().unwrap();
        if fragmented {
            for i in 0..16 {
                tlb.set_mapping(GuestAddress(iova + i * PAGE), GuestAddress(phys0 + 3 * i * PAGE), PAGE as usize, Permissions::ReadWrite)
                    .unwrap();
            }
        } else {
            tlb.set_mapping(GuestAddress(iova), GuestAddress(phys0), size as usize, Permissions::ReadWrite).unwrap();
        }
    }
    let mem = IommuMemory::new(physical::<B>(), iommu, true, B::default());
    let mut buf = AlignedBuf::new(size as usize, 0);
    Case::new("iommu_mem.read_slice(&mut buf, 1 GiB), 64 KiB", move |iters| {
        let mem = black_box(&mem);
        let t0 = Instant::now();
        for _ in 0..iters {
            mem.read_slice(&mut buf, GuestAddress(black_box(iova))).unwrap();
        }
        let ns = elapsed_ns(t0);
        black_box(buf[9]);
        ns
    })
}

/// The case called `name` in bench/iommu_memory.ts, or None; each with its own `Solo<N>` (solo.rs).
pub fn open(name: &str) -> Option<Case> {
    Some(match name {
        "read_obj_u64_hot_iommu_passthrough" => read_u64::<Solo<21>>(Table::Passthrough, false),
        "read_obj_u64_hot_iommu_identity4k" => read_u64::<Solo<22>>(Table::Identity4k, false),
        "read_obj_u64_wide_iommu_identity4k" => read_u64::<Solo<23>>(Table::Identity4k, true),
        "read_obj_u64_hot_iommu_swapped4k" => read_u64::<Solo<24>>(Table::Swapped4k, false),
        "read_slice_4k_hot_iommu_swapped4k" => read_slice_4k::<Solo<25>>(),
        "read_slice_64k_iommu_16frag" => read_slice_64k::<Solo<26>>(true),
        "read_slice_64k_iommu_contig" => read_slice_64k::<Solo<27>>(false),
        _ => return None,
    })
}

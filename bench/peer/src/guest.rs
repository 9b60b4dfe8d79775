//! The guest memory cases of bench/guest_memory.ts on vm-memory's `GuestMemoryMmap`: the same two
//! regions filled with the same byte, the same windows, the same LCG addresses, the same buffers.

use std::hint::black_box;
use std::time::Instant;

use vm_memory::bitmap::{AtomicBitmap, Bitmap, NewBitmap};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, MmapRegion};

use crate::case::{elapsed_ns, AlignedBuf, Case, KIB, MIB, PAGE, REGION};
use crate::lcg::{mask, Lcg};
use crate::solo::Solo;

/// Every byte starts as this, as in bench/guest_memory_fixture.ts.
const FILL: u8 = 0x5a;
const U64_VALUE: u64 = 0x0123_4567_89ab_cdef;

#[derive(Clone, Copy)]
struct Window {
    base: u64,
    span: u64,
}

const HOT_OBJ: Window = Window { base: MIB, span: 64 * KIB };
const HOT_4K: Window = Window { base: MIB, span: 256 * KIB };
const WIDE: Window = Window { base: 0, span: REGION };

/// The two regions, every page written through the raw mapping (so a bitmap starts clean).
fn fixture<B: NewBitmap + Bitmap>() -> GuestMemoryMmap<B> {
    let mem = GuestMemoryMmap::<B>::from_ranges(&[
        (GuestAddress(0), REGION as usize),
        (GuestAddress(REGION), REGION as usize),
    ])
    .expect("mapping the two 256 MiB regions");
    for r in mem.iter() {
        // SAFETY: the mapping is r.size() bytes long, owned by `mem` and not shared yet.
        unsafe { std::ptr::write_bytes(r.as_ptr(), FILL, r.size()) };
    }
    mem
}

fn lcg_overhead() -> Case {
    let m = mask(HOT_OBJ.span, 8);
    Case::new("Rust Lcg::next() alone", move |iters| {
        let mut g = Lcg::new();
        let mut acc = 0u32;
        let t0 = Instant::now();
        for _ in 0..iters {
            acc ^= g.next() & m;
        }
        let ns = elapsed_ns(t0);
        black_box(acc);
        ns
    })
}

fn read_u64<B: NewBitmap + Bitmap + 'static>(w: Window) -> Case {
    let mem = fixture::<B>();
    let (m, base) = (mask(w.span, 8), w.base);
    Case::new("mem.read_obj::<u64>(a)", move |iters| {
        let mem = black_box(&mem);
        let mut g = Lcg::new();
        let mut n = 0u64;
        let t0 = Instant::now();
        for _ in 0..iters {
            let v: u64 = mem.read_obj(GuestAddress(base + u64::from(g.next() & m))).unwrap();
            if v != 0 {
                n += 1;
            }
        }
        let ns = elapsed_ns(t0);
        black_box(n);
        ns
    })
}

fn write_u64<B: NewBitmap + Bitmap + 'static>(w: Window, op: &str) -> (Case, GuestMemoryMmapHandle<B>) {
    let mem = std::rc::Rc::new(fixture::<B>());
    let (m, base) = (mask(w.span, 8), w.base);
    let looped = mem.clone();
    let case = Case::new(op, move |iters| {
        let mem = black_box(&*looped);
        let mut g = Lcg::new();
        let t0 = Instant::now();
        for _ in 0..iters {
            mem.write_obj(U64_VALUE, GuestAddress(base + u64::from(g.next() & m))).unwrap();
        }
        elapsed_ns(t0)
    });
    (case, mem)
}

type GuestMemoryMmapHandle<B> = std::rc::Rc<GuestMemoryMmap<B>>;

fn read_u32<B: NewBitmap + Bitmap + 'static>(w: Window) -> Case {
    let mem = fixture::<B>();
    let (m, base) = (mask(w.span, 4), w.base);
    Case::new("mem.read_obj::<u32>(a)", move |iters| {
        let mem = black_box(&mem);
        let mut g = Lcg::new();
        let mut acc = 0u32;
        let t0 = Instant::now();
        for _ in 0..iters {
            acc ^= mem.read_obj::<u32>(GuestAddress(base + u64::from(g.next() & m))).unwrap();
        }
        let ns = elapsed_ns(t0);
        black_box(acc);
        ns
    })
}

fn write_u8<B: NewBitmap + Bitmap + 'static>(w: Window) -> Case {
    let mem = fixture::<B>();
    let (m, base) = (mask(w.span, 1), w.base);
    Case::new("mem.write_obj::<u8>(v, a)", move |iters| {
        let mem = black_box(&mem);
        let mut g = Lcg::new();
        let t0 = Instant::now();
        for i in 0..iters {
            mem.write_obj((i & 0xff) as u8, GuestAddress(base + u64::from(g.next() & m))).unwrap();
        }
        elapsed_ns(t0)
    })
}

/// 4 KiB out of memory at page-aligned LCG addresses into one reused buffer.
fn read_slice_4k<B: NewBitmap + Bitmap + 'static>(w: Window) -> Case {
    let mem = fixture::<B>();
    let (m, base) = (mask(w.span, PAGE), w.base);
    let mut buf = AlignedBuf::new(PAGE as usize, 0);
    Case::new("mem.read_slice(&mut buf, a)", move |iters| {
        let mem = black_box(&mem);
        let mut g = Lcg::new();
        let t0 = Instant::now();
        for _ in 0..iters {
            mem.read_slice(&mut buf, GuestAddress(base + u64::from(g.next() & m))).unwrap();
        }
        let ns = elapsed_ns(t0);
        black_box(buf[PAGE as usize - 1]);
        ns
    })
}

fn write_slice_4k<B: NewBitmap + Bitmap + 'static>(w: Window) -> Case {
    let mem = fixture::<B>();
    let (m, base) = (mask(w.span, PAGE), w.base);
    let buf = AlignedBuf::new(PAGE as usize, 0xa5);
    Case::new("mem.write_slice(&buf, a)", move |iters| {
        let mem = black_box(&mem);
        let mut g = Lcg::new();
        let t0 = Instant::now();
        for _ in 0..iters {
            mem.write_slice(&buf, GuestAddress(base + u64::from(g.next() & m))).unwrap();
        }
        elapsed_ns(t0)
    })
}

fn get_slice_copy_to_4k<B: NewBitmap + Bitmap + 'static>(w: Window) -> Case {
    let mem = fixture::<B>();
    let (m, base) = (mask(w.span, PAGE), w.base);
    let mut buf = AlignedBuf::new(PAGE as usize, 0);
    Case::new("mem.get_slice(a, 4096).copy_to(&mut buf)", move |iters| {
        let mem = black_box(&mem);
        let mut g = Lcg::new();
        let t0 = Instant::now();
        for _ in 0..iters {
            let slice = mem.get_slice(GuestAddress(base + u64::from(g.next() & m)), PAGE as usize).unwrap();
            slice.copy_to(&mut buf[..]);
        }
        let ns = elapsed_ns(t0);
        black_box(buf[PAGE as usize - 1]);
        ns
    })
}

/// 1 MiB at guest address 1 MiB, into or out of one buffer (WRITE is a constant, so the loop
/// holds one of the two calls, not a branch between them).
fn slice_1m<B: NewBitmap + Bitmap + 'static, const WRITE: bool>() -> Case {
    let mem = fixture::<B>();
    let mut buf = AlignedBuf::new(MIB as usize, 0xa5);
    let op = if WRITE { "mem.write_slice(&buf, 1M)" } else { "mem.read_slice(&mut buf, 1M)" };
    Case::new(op, move |iters| {
        let mem = black_box(&mem);
        let t0 = Instant::now();
        for _ in 0..iters {
            if WRITE {
                mem.write_slice(&buf, GuestAddress(MIB)).unwrap();
            } else {
                mem.read_slice(&mut buf, GuestAddress(MIB)).unwrap();
            }
        }
        let ns = elapsed_ns(t0);
        black_box(buf[9]);
        ns
    })
}

/// 8 KiB ending 4 KiB into region 1 (two fragments), or ending where region 0 ends (one).
fn slice_8k<B: NewBitmap + Bitmap + 'static>(cross: bool) -> Case {
    let mem = fixture::<B>();
    let addr = REGION - if cross { PAGE } else { 2 * PAGE };
    let mut buf = AlignedBuf::new(2 * PAGE as usize, 0);
    Case::new("mem.read_slice(&mut buf, a)", move |iters| {
        let mem = black_box(&mem);
        let t0 = Instant::now();
        for _ in 0..iters {
            mem.read_slice(&mut buf, GuestAddress(black_box(addr))).unwrap();
        }
        let ns = elapsed_ns(t0);
        black_box(buf[9]);
        ns
    })
}

/// u64 writes in the hot window with a dirty bitmap of 4 KiB pages (AtomicBitmap's page is the
/// host page, 4 KiB here, as in the Deno case); on close, every page of the window and nothing
/// else must be dirty.
fn write_u64_bitmap() -> Case {
    let w = HOT_OBJ;
    let (mut case, mem) = write_u64::<AtomicBitmap>(w, "mem.write_obj::<u64>(v, a), AtomicBitmap");
    case.on_close = Some(Box::new(move || {
        let region = mem.find_region(GuestAddress(0)).ok_or("no region at 0")?;
        // The mapping's own bitmap (GuestMemoryRegion::bitmap would give a slice of it).
        let mmap: &MmapRegion<AtomicBitmap> = region;
        let bitmap = mmap.bitmap();
        let mut a = 0;
        while a < 2 * w.span + w.base {
            let inside = a >= w.base && a < w.base + w.span;
            if bitmap.is_addr_set(a as usize) != inside {
                return Err(format!("write_obj_u64_hot_bitmap: page at {a:#x} dirty={}", !inside));
            }
            a += PAGE;
        }
        Ok(())
    }));
    case
}

/// The case called `name` in bench/guest_memory.ts, or None. Each case has its own `Solo<N>`
/// (solo.rs), so that each gets its own copy of vm-memory's generic access path.
pub fn open(name: &str) -> Option<Case> {
    const U64: &str = "mem.write_obj::<u64>(v, a)";
    Some(match name {
        "lcg_overhead" => lcg_overhead(),
        "read_obj_u64_hot" => read_u64::<Solo<1>>(HOT_OBJ),
        "read_obj_u64_wide" => read_u64::<Solo<2>>(WIDE),
        "write_obj_u64_hot" => write_u64::<Solo<3>>(HOT_OBJ, U64).0,
        "write_obj_u64_wide" => write_u64::<Solo<4>>(WIDE, U64).0,
        "read_obj_u32_hot" => read_u32::<Solo<5>>(HOT_OBJ),
        "write_obj_u8_hot" => write_u8::<Solo<6>>(HOT_OBJ),
        "read_slice_4k_hot" => read_slice_4k::<Solo<7>>(HOT_4K),
        "read_slice_4k_wide" => read_slice_4k::<Solo<8>>(WIDE),
        "write_slice_4k_hot" => write_slice_4k::<Solo<9>>(HOT_4K),
        "read_slice_1m_hot" => slice_1m::<Solo<10>, false>(),
        "write_slice_1m_hot" => slice_1m::<Solo<11>, true>(),
        "read_slice_8k_cross" => slice_8k::<Solo<12>>(true),
        "read_slice_8k_nocross" => slice_8k::<Solo<13>>(false),
        "get_slice_copy_to_4k_hot" => get_slice_copy_to_4k::<Solo<14>>(HOT_4K),
        "write_obj_u64_hot_bitmap" => write_u64_bitmap(),
        _ => return None,
    })
}

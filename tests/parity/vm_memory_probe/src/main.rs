//! Runs the operation scripts of tests/parity/vm_memory_scripts.txt through vm-memory 0.18 and
//! prints `script <name>` for each script and one result line per operation, in the format
//! tests/parity/gmem_runner.ts prints for gmem (the file's header describes it).
//!
//!   gmem-vm-memory-probe <scripts file>

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use vm_memory::iommu::{Error as IommuError, IotlbIterator, IovaRange};
use vm_memory::mmap::{FromRangesError, MmapRegionError};
use vm_memory::{
    Bytes, GuestAddress, GuestMemory, GuestMemoryBackend, GuestMemoryError, GuestMemoryMmap,
    GuestMemoryRegion, GuestRegionMmap, Iommu, IommuMemory, Iotlb, Permissions,
};

/// An IOMMU that is just an IOTLB, with no page tables behind it: a failed lookup is final. Like
/// gmem's `IotlbIommu` without a miss handler, `CannotResolve` names the only failing sub-range,
/// or the whole request when several fail.
#[derive(Debug, Default)]
struct ProbeIommu {
    iotlb: RwLock<Iotlb>,
}

impl ProbeIommu {
    // A panic inside set_mapping (rangemap refusing an empty range) poisons the lock; the IOTLB
    // itself is unchanged then, so later operations go on with it.
    fn read(&self) -> RwLockReadGuard<'_, Iotlb> {
        self.iotlb.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Iotlb> {
        self.iotlb.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Iommu for ProbeIommu {
    type IotlbGuard<'a> = RwLockReadGuard<'a, Iotlb>;

    fn translate(
        &self,
        iova: GuestAddress,
        length: usize,
        access: Permissions,
    ) -> Result<IotlbIterator<Self::IotlbGuard<'_>>, IommuError> {
        Iotlb::lookup(self.read(), iova, length, access).map_err(|fails| {
            let mut all = fails.misses.iter().chain(fails.access_fails.iter());
            let iova_range = match (all.next(), all.next()) {
                (Some(only), None) => only.clone(),
                _ => IovaRange { base: iova, length },
            };
            IommuError::CannotResolve {
                iova_range,
                reason: "no mapping".into(),
            }
        })
    }
}

type Memory = IommuMemory<GuestMemoryMmap<()>, ProbeIommu>;

fn fresh() -> Memory {
    IommuMemory::new(GuestMemoryMmap::new(), ProbeIommu::default(), false, ())
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A count, then the bytes it covers (if any): how reads are printed.
fn count_and_bytes(n: usize, buf: &[u8]) -> String {
    if n == 0 {
        hex(0)
    } else {
        format!("{} {}", hex(n as u64), bytes(&buf[..n]))
    }
}

fn ranges(r: &[IovaRange]) -> String {
    let parts: Vec<String> = r
        .iter()
        .map(|x| format!("{}+{}", hex(x.base.0), hex(x.length as u64)))
        .collect();
    format!("[{}]", parts.join(","))
}

fn error(e: &GuestMemoryError) -> String {
    match e {
        GuestMemoryError::InvalidGuestAddress(a) => format!("InvalidGuestAddress({})", hex(a.0)),
        GuestMemoryError::PartialBuffer {
            expected,
            completed,
        } => format!(
            "PartialBuffer({},{})",
            hex(*expected as u64),
            hex(*completed as u64)
        ),
        GuestMemoryError::IommuError(IommuError::CannotResolve { iova_range, .. }) => format!(
            "IommuError(CannotResolve({}+{}))",
            hex(iova_range.base.0),
            hex(iova_range.length as u64)
        ),
        GuestMemoryError::IommuError(IommuError::Fragmented { .. }) => {
            "IommuError(Fragmented)".into()
        }
        GuestMemoryError::IommuError(IommuError::IommuMisconfigured { .. }) => {
            "IommuError(IommuMisconfigured)".into()
        }
        GuestMemoryError::IOError(_) => "IOError".into(),
        other => format!("{other:?}"),
    }
}

fn from_ranges_error(e: &FromRangesError) -> String {
    match e {
        FromRangesError::MmapRegion(MmapRegionError::Mmap(io)) => {
            format!(
                "MmapRegion(Mmap(os error {}))",
                io.raw_os_error().unwrap_or(0)
            )
        }
        FromRangesError::MmapRegion(inner) => format!("MmapRegion({inner:?})"),
        FromRangesError::Collection(inner) => format!("{inner:?}"),
        FromRangesError::InvalidGuestRegion => "InvalidGuestRegion".into(),
    }
}

fn result<T>(r: Result<T, GuestMemoryError>, ok: impl FnOnce(T) -> String) -> String {
    match r {
        Ok(v) => ok(v),
        Err(e) => format!("err {}", error(&e)),
    }
}

fn option(v: Option<u64>) -> String {
    v.map(hex).unwrap_or_else(|| "none".into())
}

fn perm(s: &str) -> Permissions {
    match s {
        "no" => Permissions::No,
        "r" => Permissions::Read,
        "w" => Permissions::Write,
        "rw" => Permissions::ReadWrite,
        _ => panic!("bad permission {s}"),
    }
}

fn num(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("bad number {s}"))
}

/// What a script works on: the memory behind the IOMMU (its IOTLB and enabled flag included), and
/// whether the accessors (`read`, `get_slices`, `check_range`, ...) go to the IOMMU memory or
/// straight to the physical memory (`via backend`).
struct State {
    mem: Memory,
    via_backend: bool,
}

/// Runs one operation (replacing the memory when its table changes) and returns its line.
fn run(state: &mut State, op: &str, args: &[&str]) -> String {
    let n = |i: usize| num(args[i]);
    let ga = |i: usize| GuestAddress(num(args[i]));
    let mem = &mut state.mem;
    let backend = mem.get_backend();
    match op {
        "via" => {
            state.via_backend = args[0] == "backend";
            "ok".into()
        }
        "memory" => {
            let pairs: Vec<(GuestAddress, usize)> = args
                .chunks(2)
                .map(|p| (GuestAddress(num(p[0])), num(p[1]) as usize))
                .collect();
            let made = if pairs.is_empty() {
                Ok(GuestMemoryMmap::new())
            } else {
                GuestMemoryMmap::<()>::from_ranges(&pairs)
            };
            match made {
                Ok(m) => {
                    *mem = mem.with_replaced_backend(m);
                    "ok".into()
                }
                Err(e) => format!("err {}", from_ranges_error(&e)),
            }
        }
        "insert_region" => match GuestRegionMmap::<()>::from_range(ga(0), n(1) as usize, None) {
            Err(e) => format!("err {}", from_ranges_error(&e)),
            Ok(r) => match backend.insert_region(Arc::new(r)) {
                Ok(m) => {
                    *mem = mem.with_replaced_backend(m);
                    "ok".into()
                }
                Err(e) => format!("err {e:?}"),
            },
        },
        "remove_region" => match backend.remove_region(ga(0), n(1)) {
            Ok((m, _)) => {
                *mem = mem.with_replaced_backend(m);
                "ok".into()
            }
            Err(e) => format!("err {e:?}"),
        },
        "iommu" => {
            mem.set_iommu_enabled(args[0] == "on");
            "ok".into()
        }
        "map" => {
            let r = mem
                .iommu()
                .write()
                .set_mapping(ga(0), ga(1), n(2) as usize, perm(args[3]));
            match r {
                Ok(()) => "ok".into(),
                Err(e) => format!("err {e:?}"),
            }
        }
        "unmap" => {
            mem.iommu().write().invalidate_mapping(ga(0), n(1) as usize);
            "ok".into()
        }
        "lookup" => match Iotlb::lookup(mem.iommu().read(), ga(0), n(1) as usize, perm(args[2])) {
            Ok(it) => {
                let got: Vec<IovaRange> = it
                    .map(|m| IovaRange {
                        base: m.base,
                        length: m.length,
                    })
                    .collect();
                format!("ok {}", ranges(&got))
            }
            Err(f) => format!(
                "fail misses {} access_fails {}",
                ranges(&f.misses),
                ranges(&f.access_fails)
            ),
        },
        "num_regions" => hex(backend.num_regions() as u64),
        "last_addr" => hex(backend.last_addr().0),
        "find_region" => option(backend.find_region(ga(0)).map(|r| r.start_addr().0)),
        "address_in_range" => backend.address_in_range(ga(0)).to_string(),
        "check_address" => option(backend.check_address(ga(0)).map(|a| a.0)),
        "checked_offset" => option(backend.checked_offset(ga(0), n(1) as usize).map(|a| a.0)),
        "get_slice" => result(backend.get_slice(ga(0), n(1) as usize), |s| {
            hex(s.len() as u64)
        }),
        "get_host_address" => result(backend.get_host_address(ga(0)), |_| "ok".into()),
        _ if state.via_backend => access(backend, op, args),
        _ => access(&*mem, op, args),
    }
}

/// The accessors every `GuestMemory` has, on `mem`.
fn access<M: GuestMemory + ?Sized>(mem: &M, op: &str, args: &[&str]) -> String {
    let n = |i: usize| num(args[i]);
    let ga = |i: usize| GuestAddress(num(args[i]));
    match op {
        "check_range" => mem
            .check_range(ga(0), n(1) as usize, perm(args[2]))
            .to_string(),
        "get_slices" => match mem.get_slices(ga(0), n(1) as usize, perm(args[2])) {
            Err(e) => format!("err {}", error(&e)),
            Ok(items) => {
                let mut lens = Vec::new();
                let mut stop = String::new();
                for item in items {
                    match item {
                        Ok(s) => lens.push(hex(s.len() as u64)),
                        Err(e) => {
                            stop = format!(" {}", error(&e));
                            break;
                        }
                    }
                }
                format!("[{}]{}", lens.join(","), stop)
            }
        },
        "write" => result(mem.write(&vec![n(2) as u8; n(1) as usize], ga(0)), |c| {
            hex(c as u64)
        }),
        "read" => {
            let mut buf = vec![0u8; n(1) as usize];
            let r = mem.read(&mut buf, ga(0));
            result(r, |c| count_and_bytes(c, &buf))
        }
        "write_slice" => result(
            mem.write_slice(&vec![n(2) as u8; n(1) as usize], ga(0)),
            |()| "ok".into(),
        ),
        "read_slice" => {
            let mut buf = vec![0u8; n(1) as usize];
            let r = mem.read_slice(&mut buf, ga(0));
            result(r, |()| {
                if buf.is_empty() {
                    "ok".into()
                } else {
                    format!("ok {}", bytes(&buf))
                }
            })
        }
        "read_u64" => result(mem.read_obj::<u64>(ga(0)), hex),
        "load_u32" => result(mem.load::<u32>(ga(0), Ordering::SeqCst), |v| hex(v as u64)),
        "load_u64" => result(mem.load::<u64>(ga(0), Ordering::SeqCst), hex),
        "store_u32" => result(mem.store(n(1) as u32, ga(0), Ordering::SeqCst), |()| {
            "ok".into()
        }),
        "store_u64" => result(mem.store(n(1), ga(0), Ordering::SeqCst), |()| "ok".into()),
        "read_volatile_from" => {
            let count = n(1) as usize;
            let src = vec![0xeeu8; count];
            result(
                mem.read_volatile_from(ga(0), &mut src.as_slice(), count),
                |c| hex(c as u64),
            )
        }
        "write_volatile_to" => {
            let mut dst: Vec<u8> = Vec::new();
            result(mem.write_volatile_to(ga(0), &mut dst, n(1) as usize), |c| {
                hex(c as u64)
            })
        }
        _ => panic!("unknown operation {op}"),
    }
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: gmem-vm-memory-probe <scripts file>");
    let text = std::fs::read_to_string(&path).expect("cannot read the scripts file");
    // Panics are results here (printed as `panic`), not noise on stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let mut state = State {
        mem: fresh(),
        via_backend: false,
    };
    for raw in text.lines() {
        let line = raw.split("=>").next().unwrap().trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[0] == "script" {
            state = State {
                mem: fresh(),
                via_backend: false,
            };
            println!("{line}");
            continue;
        }
        let out = catch_unwind(AssertUnwindSafe(|| run(&mut state, words[0], &words[1..])));
        println!("{}", out.unwrap_or_else(|_| "panic".into()));
    }
}

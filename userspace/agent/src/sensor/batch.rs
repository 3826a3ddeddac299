//! Whole-table reads of per-CPU hash maps with `BPF_MAP_LOOKUP_BATCH`: thousands of entries
//! per system call, where walking keys costs two calls per entry. This is what makes a
//! periodic read of a million-flow table affordable for the agent.

use std::io;
use std::os::fd::RawFd;

/// `BPF_MAP_LOOKUP_BATCH` from the kernel's uapi `enum bpf_cmd`.
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// The `batch` member of the kernel's `union bpf_attr`; the kernel zero-fills the rest.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Entries asked for per call. A hash bucket must fit in one call; buckets hold a handful.
pub const CHUNK: usize = 8192;

/// Calls `f` with every key and its per-CPU values (one per possible CPU, `cpus` of them)
/// of the per-CPU hash or array map behind `fd`, until `f` returns false.
///
/// `K` and `V` must be the map's key and value types (plain data); `V`'s size must be a
/// multiple of 8, as the kernel lays per-CPU values out in 8-byte steps.
pub fn per_cpu<K: Copy + Default, V: Copy + Default>(
    fd: RawFd,
    cpus: usize,
    f: impl FnMut(&K, &[V]) -> bool,
) -> io::Result<()> {
    assert_eq!(
        size_of::<V>() % 8,
        0,
        "per-CPU values are laid out in 8-byte steps"
    );
    lookup(fd, cpus, f)
}

/// [`per_cpu`] for a map with one value per key.
pub fn plain<K: Copy + Default, V: Copy + Default>(
    fd: RawFd,
    mut f: impl FnMut(&K, &V) -> bool,
) -> io::Result<()> {
    lookup(fd, 1, |k, v: &[V]| f(k, &v[0]))
}

fn lookup<K: Copy + Default, V: Copy + Default>(
    fd: RawFd,
    shares: usize,
    mut f: impl FnMut(&K, &[V]) -> bool,
) -> io::Result<()> {
    let mut keys = vec![K::default(); CHUNK];
    let mut values = vec![V::default(); CHUNK * shares];
    let mut token: u32 = 0;
    let mut first = true;
    loop {
        let mut next: u32 = 0;
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                std::ptr::from_mut(&mut token) as u64
            },
            out_batch: std::ptr::from_mut(&mut next) as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: CHUNK as u32,
            map_fd: fd as u32,
            ..BatchAttr::default()
        };
        // SAFETY: the attr points at buffers of CHUNK keys and CHUNK * shares values that
        // live across the call, and at two u32 batch tokens (the token of hash maps, and
        // the key of arrays).
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                std::ptr::from_mut(&mut attr),
                size_of::<BatchAttr>() as u32,
            )
        };
        let err = (r < 0).then(io::Error::last_os_error);
        let n = attr.count as usize;
        for i in 0..n.min(CHUNK) {
            if !f(&keys[i], &values[i * shares..(i + 1) * shares]) {
                return Ok(());
            }
        }
        match err {
            // The end of the table (the last entries come with it).
            Some(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Some(e) => return Err(e),
            None => {}
        }
        token = next;
        first = false;
    }
}

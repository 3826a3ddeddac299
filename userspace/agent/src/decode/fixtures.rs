//! Kernel records built in userspace, byte for byte as the probes write them: for decoder
//! tests and benchmarks.

use heir_abi::{
    ARG_LEN, ArgsRecord, COMM_LEN, ExecRecord, Header, Kind, MAX_ARGS, PATH_LEN, PathRecord,
    SOCKADDR_LEN, SockRecord,
};

pub fn header(kind: Kind, pid: u32) -> Header {
    let mut comm = [0u8; COMM_LEN];
    comm[..4].copy_from_slice(b"bash");
    Header {
        kind: kind as u16,
        flags: 0,
        tid: pid,
        tgid: pid,
        ppid: 1,
        uid: 1000,
        gid: 1000,
        euid: 0,
        _pad: 0,
        ts_boot_ns: 5_000_000_000,
        cgroup_id: 42,
        comm,
    }
}

/// The bytes of a record, as the ring buffer hands them over.
pub fn bytes<T: Copy>(rec: &T) -> Vec<u8> {
    // SAFETY: T is a plain #[repr(C)] record; viewing it as bytes is always valid.
    unsafe { std::slice::from_raw_parts((rec as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

fn put(dst: &mut [u8], s: &str) {
    let n = s.len().min(dst.len() - 1);
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
    dst[n] = 0;
}

pub fn exec(pid: u32, filename: &str, argv: &[&str], ret: i64) -> ExecRecord {
    let mut r = ExecRecord {
        header: header(Kind::Exec, pid),
        ret,
        argc: argv.len().min(MAX_ARGS) as u32,
        _pad: 0,
        filename: [0; PATH_LEN],
        args: [[0; ARG_LEN]; MAX_ARGS],
    };
    put(&mut r.filename, filename);
    for (slot, a) in r.args.iter_mut().zip(argv) {
        put(slot, a);
    }
    r
}

pub fn path(kind: Kind, pid: u32, p: &str, a: u64, ret: i64) -> PathRecord {
    let mut r = PathRecord {
        header: header(kind, pid),
        ret,
        a,
        b: 0,
        path: [0; PATH_LEN],
    };
    put(&mut r.path, p);
    r
}

pub fn connect_v4(pid: u32, ip: [u8; 4], port: u16, ret: i64) -> SockRecord {
    let mut r = SockRecord {
        header: header(Kind::Connect, pid),
        ret,
        fd: 3,
        backlog: 0,
        uptr: 0,
        addr_len: 16,
        local_len: 0,
        addr: [0; SOCKADDR_LEN],
        local: [0; SOCKADDR_LEN],
    };
    r.addr[..2].copy_from_slice(&2u16.to_ne_bytes());
    r.addr[2..4].copy_from_slice(&port.to_be_bytes());
    r.addr[4..8].copy_from_slice(&ip);
    r
}

pub fn args(kind: Kind, pid: u32, nr: u64, args: [u64; 4], ret: i64) -> ArgsRecord {
    ArgsRecord {
        header: header(kind, pid),
        ret,
        nr,
        args,
    }
}

/// A mixed stream, roughly in the proportions a busy server produces.
pub fn mixed(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let pid = 1000 + (i % 200) as u32;
            match i % 10 {
                0 => bytes(&exec(
                    pid,
                    "/usr/bin/storescu",
                    &["storescu", "-aec", "PACS", "10.0.0.5", "104"],
                    0,
                )),
                1..=4 => bytes(&path(
                    Kind::Open,
                    pid,
                    "/var/lib/dicom/study/1.2.840.113619.dcm",
                    0o101,
                    3,
                )),
                5 | 6 => bytes(&connect_v4(pid, [10, 0, 0, 5], 104, 0)),
                7 => bytes(&args(Kind::Fork, pid, 0, [u64::from(pid) + 1, 0, 0, 0], 0)),
                8 => bytes(&args(Kind::Exit, pid + 1, 0, [0, 0, 0, 0], 0)),
                _ => bytes(&path(Kind::Unlink, pid, "/tmp/x", 0, 0)),
            }
        })
        .collect()
}

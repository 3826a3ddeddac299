//! Performs one kind of syscall activity on demand, so the kernel tests can check exactly
//! what the sensor reports about a process whose pid they know.
//!
//! Usage: heir-actor <action> [args]; prints what the test needs to know (ports, pids) on
//! stdout as `key=value` lines.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let action = args.first().map(String::as_str).unwrap_or("");
    match action {
        "listen-connect" => listen_connect(),
        "setuid" => setuid(args[1].parse().expect("uid")),
        "ptrace" => ptrace_child(),
        "finit-module" => finit_module(),
        "open" => {
            let mut s = String::new();
            let _ = std::fs::File::open(&args[1]).map(|mut f| f.read_to_string(&mut s));
        }
        "open-loop" => open_loop(&args[1], args[2].parse().expect("count")),
        "memfd" => memfd(&args[1]),
        "store-writer" => store_writer(&args[1]),
        other => {
            eprintln!("heir-actor: unknown action `{other}`");
            std::process::exit(2);
        }
    }
}

fn listen_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (mut server, peer) = listener.accept().expect("accept");
    client.write_all(b"hi").expect("write");
    let mut buf = [0u8; 2];
    server.read_exact(&mut buf).expect("read");
    println!("port={port}");
    println!("client_port={}", peer.port());
}

fn setuid(uid: u32) {
    // SAFETY: plain syscall.
    let rc = unsafe { libc::setuid(uid) };
    println!("ret={rc}");
}

fn ptrace_child() {
    // SAFETY: fork in a single-threaded process; the child only sleeps then exits.
    let child = unsafe { libc::fork() };
    if child == 0 {
        std::thread::sleep(std::time::Duration::from_secs(2));
        // SAFETY: terminating the child.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: attaching to our own child, then detaching and reaping it.
    unsafe {
        let rc = libc::ptrace(libc::PTRACE_ATTACH, child, 0, 0);
        let mut status = 0;
        libc::waitpid(child, &mut status, 0);
        libc::ptrace(libc::PTRACE_DETACH, child, 0, 0);
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, &mut status, 0);
        println!("target={child}");
        println!("ret={rc}");
    }
}

fn finit_module() {
    let f = std::fs::File::open("/dev/null").expect("/dev/null");
    use std::os::fd::AsRawFd;
    // Built on the heap, so the page is resident: the probes cannot fault a page in, and a
    // string in a never-touched read-only page would read as missing.
    let params = std::ffi::CString::new("heir_test_params").expect("no NUL");
    // SAFETY: finit_module with a valid fd and NUL-terminated params; the kernel rejects it.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) };
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    println!("ret={rc}");
    println!("errno={errno}");
}

fn open_loop(path: &str, n: u64) {
    let c = std::ffi::CString::new(path).expect("path");
    for _ in 0..n {
        // SAFETY: valid C string; the fd is closed right away.
        unsafe {
            let fd = libc::open(c.as_ptr(), libc::O_RDONLY);
            if fd >= 0 {
                libc::close(fd);
            }
        }
    }
}

fn memfd(name: &str) {
    let c = std::ffi::CString::new(name).expect("name");
    // SAFETY: valid C string.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), 0) };
    println!("ret={fd}");
}

/// Appends alerts to a store as fast as it can, printing each sequence number once its
/// transaction has committed, until killed.
fn store_writer(path: &str) {
    use heir_model::{Alert, Category, Severity, Timestamp};
    let store =
        heir_store::Store::open(std::path::Path::new(path), heir_store::Retention::default())
            .expect("store opens");
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        let a = Alert::new(
            Timestamp::from_secs(1_700_000_000 + n),
            "crash.test",
            format!("alert {n}"),
            Category::Anomaly,
            Severity::Low,
            0.5,
        );
        for seq in store.append_alerts(&[a]).expect("append") {
            writeln!(out, "{seq}").expect("stdout");
            out.flush().expect("stdout");
        }
    }
}

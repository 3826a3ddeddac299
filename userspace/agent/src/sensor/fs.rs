//! The kernel filesystems the sensor needs, mounted when the host has not.

use std::path::Path;

use super::Error;

/// Pinned maps live in bpffs, which minimal hosts (or a fresh mount namespace) do not mount.
/// The probes use raw tracepoints only, so tracefs is not needed.
pub fn ensure_mounted() -> Result<(), Error> {
    mount_if_missing("bpf", "/sys/fs/bpf", "")?;
    Ok(())
}

fn mount_if_missing(fstype: &'static str, path: &'static str, probe: &str) -> Result<(), Error> {
    let mounted = std::fs::read_to_string("/proc/self/mounts")
        .map(|m| m.lines().any(|l| l.split(' ').nth(1) == Some(path)))
        .unwrap_or(false);
    if mounted || (!probe.is_empty() && Path::new(path).join(probe).exists()) {
        return Ok(());
    }
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL in constant");
    let (src, target, fs) = (
        c(if fstype == "bpf" { "bpf" } else { "nodev" }),
        c(path),
        c(fstype),
    );
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fs.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::Mount {
            what: fstype,
            path,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// BPF memory is charged to the memory cgroup on current kernels, so a refused rlimit change
/// is worth a warning, not a failure.
pub fn raise_memlock() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: valid pointer to a local struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        tracing::debug!(
            "could not raise RLIMIT_MEMLOCK ({}); relying on memcg accounting",
            std::io::Error::last_os_error()
        );
    }
}

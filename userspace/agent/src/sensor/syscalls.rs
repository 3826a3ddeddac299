//! The host's syscall numbers for the probes' per-syscall handlers. The probes carry no
//! syscall table: handlers are named after their syscall and placed in the dispatchers'
//! program arrays here, at the numbers of the architecture the agent was built for.

/// The syscall number of `name` on this architecture, if it has that syscall.
pub fn number(name: &str) -> Option<i64> {
    Some(match name {
        "execve" => libc::SYS_execve,
        "execveat" => libc::SYS_execveat,
        #[cfg(target_arch = "x86_64")]
        "open" => libc::SYS_open,
        #[cfg(target_arch = "x86_64")]
        "creat" => libc::SYS_creat,
        "openat" => libc::SYS_openat,
        "openat2" => libc::SYS_openat2,
        #[cfg(target_arch = "x86_64")]
        "rename" => libc::SYS_rename,
        #[cfg(target_arch = "x86_64")]
        "renameat" => libc::SYS_renameat,
        "renameat2" => libc::SYS_renameat2,
        #[cfg(target_arch = "x86_64")]
        "unlink" => libc::SYS_unlink,
        "unlinkat" => libc::SYS_unlinkat,
        "connect" => libc::SYS_connect,
        "bind" => libc::SYS_bind,
        "listen" => libc::SYS_listen,
        "accept" => libc::SYS_accept,
        "accept4" => libc::SYS_accept4,
        "setuid" => libc::SYS_setuid,
        "setreuid" => libc::SYS_setreuid,
        "setresuid" => libc::SYS_setresuid,
        "setgid" => libc::SYS_setgid,
        "setregid" => libc::SYS_setregid,
        "setresgid" => libc::SYS_setresgid,
        "capset" => libc::SYS_capset,
        "ptrace" => libc::SYS_ptrace,
        "bpf" => libc::SYS_bpf,
        "memfd_create" => libc::SYS_memfd_create,
        "mount" => libc::SYS_mount,
        "init_module" => libc::SYS_init_module,
        "finit_module" => libc::SYS_finit_module,
        "delete_module" => libc::SYS_delete_module,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_syscalls_resolve() {
        assert_eq!(super::number("openat"), Some(libc::SYS_openat));
        assert_eq!(super::number("finit_module"), Some(libc::SYS_finit_module));
        assert_eq!(super::number("no_such_call"), None);
    }
}

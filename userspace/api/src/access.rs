//! Who is calling, and what they may do.
//!
//! The socket's mode lets root and the `heir` group connect. Among them, reading is open to
//! all, while changing anything (acknowledging an alert, blocking, unblocking, approving or
//! denying a pending block) needs an operator: root, or a member of the operators' group
//! (`api_operators` in the agent's configuration, `heir-admin` by default). The caller is
//! known from the socket's peer credentials (`SO_PEERCRED`), which the kernel fills in and a
//! client cannot forge, and the audit log names that user instead of a generic "operator".

use std::ffi::{CStr, CString};
use std::fmt;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use serde::{Deserialize, Serialize};
use tokio::net::UnixListener;

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May read every route.
    Reader,
    /// May also change state.
    Operator,
}

/// The process at the other end of the socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    /// The user's name, when the system knows it.
    pub user: Option<String>,
    pub pid: Option<i32>,
    pub role: Role,
}

impl Caller {
    /// A caller inside the agent's own process (a router served without a socket, as in
    /// tests): it is the agent itself, so it may do anything.
    pub fn in_process() -> Caller {
        Caller {
            uid: current_uid(),
            user: Some("in-process".into()),
            pid: Some(std::process::id() as i32),
            role: Role::Operator,
        }
    }
}

impl fmt::Display for Caller {
    /// `alice (uid 1001)`, or `uid 1001` for a user the system cannot name: what the audit
    /// log records.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(u) => write!(f, "{u} (uid {})", self.uid),
            None => write!(f, "uid {}", self.uid),
        }
    }
}

/// Who is an operator: root, and the members of one group.
#[derive(Clone, Debug)]
pub struct Access {
    /// The operators' group name and, when it exists on this system, its gid.
    group: String,
    gid: Option<u32>,
}

impl Access {
    /// Operators are root and the members of `group` (looked up now; a group that does not
    /// exist leaves root the only operator).
    pub fn new(group: &str) -> Access {
        Access {
            group: group.to_owned(),
            gid: gid_of(group),
        }
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The caller with these credentials and its role.
    pub fn caller(&self, uid: u32, gid: u32, pid: Option<i32>) -> Caller {
        let user = user_name(uid);
        let operator = uid == 0
            || self.gid.is_some_and(|op| {
                gid == op
                    || user
                        .as_deref()
                        .is_some_and(|name| groups_of(name, gid).contains(&op))
            });
        Caller {
            uid,
            user,
            pid,
            role: if operator {
                Role::Operator
            } else {
                Role::Reader
            },
        }
    }
}

/// The peer credentials of one connection, read once when it is accepted.
#[derive(Clone, Copy, Debug)]
pub struct PeerCred {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for PeerCred {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        match stream.io().peer_cred() {
            Ok(c) => PeerCred {
                uid: c.uid(),
                gid: c.gid(),
                pid: c.pid(),
            },
            // Unreachable on Linux for a connected Unix socket; an unknown peer is treated
            // as the least privileged user there is.
            Err(_) => PeerCred {
                uid: u32::MAX,
                gid: u32::MAX,
                pid: None,
            },
        }
    }
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Scratch space for the reentrant NSS lookups.
const NSS_BUF: usize = 16 * 1024;

fn user_name(uid: u32) -> Option<String> {
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; NSS_BUF];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the sizes given; on success `out` points at `pwd`,
    // whose strings live in `buf`, which outlives the read below.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name is a NUL-terminated string inside `buf`.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

fn gid_of(group: &str) -> Option<u32> {
    let name = CString::new(group).ok()?;
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; NSS_BUF];
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in `user_name`.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        )
    };
    (rc == 0 && !out.is_null()).then_some(grp.gr_gid)
}

/// Every group `user` belongs to (through NSS, so LDAP groups count too).
fn groups_of(user: &str, primary: u32) -> Vec<u32> {
    let Ok(name) = CString::new(user) else {
        return vec![primary];
    };
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let asked = n;
        // SAFETY: `groups` has room for `n` entries; getgrouplist writes at most that many
        // and sets `n` to the number it needs.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), primary, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n as usize);
            return groups;
        }
        if n <= asked {
            return vec![primary];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_an_operator_and_strangers_read() {
        let access = Access::new("a-group-that-does-not-exist");
        assert_eq!(access.caller(0, 0, None).role, Role::Operator);
        let stranger = access.caller(4_000_000, 4_000_000, Some(7));
        assert_eq!(stranger.role, Role::Reader);
        assert_eq!(stranger.to_string(), "uid 4000000");
    }

    #[test]
    fn the_operators_group_makes_an_operator() {
        // Group 0 (root) exists everywhere: a caller whose primary group it is operates.
        let access = Access::new("root");
        assert_eq!(access.caller(4_000_000, 0, None).role, Role::Operator);
        assert_eq!(access.caller(4_000_000, 4_000_001, None).role, Role::Reader);
        assert_eq!(access.caller(0, 0, None).to_string(), "root (uid 0)");
    }
}

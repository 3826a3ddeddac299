//! What heir's tests share, so that none of them can hang or pass on a slow machine.
//!
//! - [`poll`] waits for a condition with a deadline and names what it waited for when the
//!   deadline passes. A test never sleeps for a fixed time and then looks.
//! - [`Lines`] reads a child's output on its own thread, so that every read has a timeout: a
//!   child that stops writing fails the test instead of stalling the run.
//!
//! Absence checks ("this did not happen") go with a canary: something that must happen after
//! it, through the same path, and that the test waits for first. That the canary arrived proves
//! the path was live; only then does the absence mean anything.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often [`poll`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(25);

/// Calls `check` until it returns `Some`, for at most `within`; panics naming `what` if it never
/// does.
#[track_caller]
pub fn poll<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    match try_poll(within, &mut check) {
        Some(v) => v,
        None => panic!("waited {within:?} for {what}; it did not happen"),
    }
}

/// Like [`poll`], but says `None` when the deadline passes, for a caller that has more to say.
pub fn try_poll<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL_EVERY.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Waits for `child` to exit, for at most `within`; kills it and panics naming `what` if it
/// does not.
#[track_caller]
pub fn exit_within(child: &mut Child, within: Duration, what: &str) -> ExitStatus {
    match try_poll(within, || child.try_wait().expect("waiting for a child")) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {within:?}; killed")
        }
    }
}

/// A child process that is killed when the test ends, however it ends.
pub struct Reap(pub Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for the `ready` line that `heir agent` prints once its probes are attached, for at
/// most `within`, then keeps draining its stdout so it never blocks on a full pipe.
#[track_caller]
pub fn ready(agent: &mut Child, within: Duration) {
    let out = Lines::new(
        agent.stdout.take().expect("the agent's stdout is piped"),
        "heir agent's stdout",
    );
    assert_eq!(out.expect_within(within), "ready");
    out.drain();
}

/// Starts `heir agent` from the binary at `heir`, at its defaults, with its state in `data`
/// and its alert lines in `alerts`, running in `cwd`; waits up to a minute for `ready`.
#[track_caller]
pub fn agent(
    heir: &std::path::Path,
    data: &std::path::Path,
    alerts: &std::path::Path,
    cwd: &std::path::Path,
) -> Reap {
    let mut agent = Reap(
        std::process::Command::new(heir)
            .current_dir(cwd)
            .args(["agent", "--data-dir"])
            .arg(data)
            .arg("--alerts")
            .arg(alerts)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", heir.display())),
    );
    ready(&mut agent.0, Duration::from_secs(60));
    agent
}

/// A name unique to this process and call: tests running side by side in one binary keep
/// their files, markers and tools apart.
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Copies the program at `from` to `to`, to be run from there.
///
/// The copy is written by `cp` in a process of its own. Written here, its open write handle
/// would be inherited by any process another test thread forks in that instant, and running
/// the copy would fail with "Text file busy" until that child had exec'd.
#[track_caller]
pub fn copy_executable(from: impl AsRef<std::path::Path>, to: impl AsRef<std::path::Path>) {
    let (from, to) = (from.as_ref(), to.as_ref());
    let status = std::process::Command::new("cp")
        .arg("--")
        .arg(from)
        .arg(to)
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("running cp: {e}"));
    assert!(
        status.success(),
        "cp {} {}: {status}",
        from.display(),
        to.display()
    );
}

/// The canary before an absence check: a copy of `cat` in `dir`, with a name of its own, reads
/// `/etc/shadow`, and this waits up to 20 s for its `credential_access` alert in `alerts`.
/// Once it is in, the agent has handled everything that happened before it.
#[track_caller]
pub fn shadow_canary(dir: &std::path::Path, alerts: &std::path::Path) {
    let name = format!("canary{}", unique());
    let exe = dir.join(&name);
    copy_executable("/usr/bin/cat", &exe);
    let mut child = std::process::Command::new(&exe)
        .arg("/etc/shadow")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("running the canary");
    assert!(exit_within(&mut child, Duration::from_secs(30), "the canary").success());
    // The kernel keeps 15 bytes of a command name.
    let comm: String = name.chars().take(15).collect();
    poll(
        &format!("the canary {name}'s credential_access alert"),
        Duration::from_secs(20),
        || {
            alert_lines(alerts)
                .into_iter()
                .find(|a| a["category"] == "credential_access" && a["comm"] == comm.as_str())
        },
    );
}

/// Runs `cmd` to completion within `within`, its output going to files in `scratch` (no pipe
/// to fill); returns whether it succeeded, its stdout and its stderr.
#[track_caller]
pub fn run_within(
    cmd: &mut std::process::Command,
    scratch: &std::path::Path,
    within: Duration,
) -> (bool, String, String) {
    let what = format!("{cmd:?}");
    let (out, err) = (scratch.join("run.out"), scratch.join("run.err"));
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).expect("creating run.out"))
        .stderr(std::fs::File::create(&err).expect("creating run.err"))
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = exit_within(&mut child, within, &what);
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    (status.success(), read(&out), read(&err))
}

/// Runs `ip` with `args` (namespaces and links the test makes); panics with its stderr if it
/// fails.
#[track_caller]
pub fn ip(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The alert JSON lines `heir agent --alerts FILE` has written so far (none if the file is not
/// there yet); panics on a line that is not JSON, which would break every user's script. A
/// last line without its newline is still being written, and is left for the next look.
pub fn alert_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("alert line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Lines of a child's stdout or stderr, read on a thread of their own so that each read can
/// time out.
pub struct Lines {
    rx: Receiver<std::io::Result<String>>,
    name: String,
}

impl Lines {
    /// Starts reading `from`; `name` says whose output this is in failure messages.
    pub fn new(from: impl Read + Send + 'static, name: impl Into<String>) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let end = line.is_err();
                if tx.send(line).is_err() || end {
                    break;
                }
            }
        });
        Self {
            rx,
            name: name.into(),
        }
    }

    /// The next line, or `None` at the end of the output; panics if none comes within `within`.
    #[track_caller]
    pub fn next_within(&self, within: Duration) -> Option<String> {
        match self.rx.recv_timeout(within) {
            Ok(Ok(line)) => Some(line),
            Ok(Err(e)) => panic!("reading {}: {e}", self.name),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                panic!("{} wrote no line within {within:?}", self.name)
            }
        }
    }

    /// The next line, which must come within `within`.
    #[track_caller]
    pub fn expect_within(&self, within: Duration) -> String {
        self.next_within(within)
            .unwrap_or_else(|| panic!("{} ended its output", self.name))
    }

    /// Reads lines until one satisfies `pred`, for at most `within` in all; returns it.
    #[track_caller]
    pub fn until(
        &self,
        what: &str,
        within: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Ok(line)) if pred(&line) => return line,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("reading {}: {e}", self.name),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{} ended its output before {what}", self.name)
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "waited {within:?} for {what} from {}; it did not come",
                        self.name
                    )
                }
            }
        }
    }

    /// Every line up to the end of the output, which must come within `within` in all.
    #[track_caller]
    pub fn rest(&self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut lines = Vec::new();
        while let Some(line) = self.next_within(deadline.saturating_duration_since(Instant::now()))
        {
            lines.push(line);
        }
        lines
    }

    /// Keeps reading in the background and throws the lines away, so the child never blocks on
    /// a full pipe.
    pub fn drain(self) {
        std::thread::spawn(move || for _ in self.rx {});
    }

    /// The channel the lines arrive on, for a caller that selects on it itself.
    pub fn into_receiver(self) -> Receiver<std::io::Result<String>> {
        self.rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_returns_once_the_condition_holds() {
        let start = Instant::now();
        let v = poll("the clock to move", Duration::from_secs(5), || {
            (start.elapsed() > Duration::from_millis(60)).then_some(7)
        });
        assert_eq!(v, 7);
    }

    #[test]
    #[should_panic(expected = "waited 50ms for nothing; it did not happen")]
    fn poll_names_what_never_happened() {
        poll::<()>("nothing", Duration::from_millis(50), || None);
    }

    #[test]
    fn lines_time_out_instead_of_hanging() {
        let (reader, _keep) = std::io::pipe().unwrap();
        let lines = Lines::new(reader, "a silent child");
        let r = std::panic::catch_unwind(|| lines.next_within(Duration::from_millis(50)));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert_eq!(msg, "a silent child wrote no line within 50ms");
    }

    #[test]
    fn lines_find_the_line_asked_for() {
        let lines = Lines::new(&b"one\ntwo\nready\n"[..], "a child");
        assert_eq!(
            lines.until("ready", Duration::from_secs(1), |l| l == "ready"),
            "ready"
        );
        assert_eq!(lines.next_within(Duration::from_secs(1)), None);
    }
}

//! Inline test cases of a rule: short event sequences written in YAML with sensible defaults, so
//! a rule's author shows what must fire and what must stay quiet right next to the condition.

use heir_model::{Event, Timestamp};
use serde_json::{Map, Value};

/// Test cases start at this instant (2026-01-01T00:00:00Z) and advance one second per event
/// unless an event gives `at: <seconds>`.
pub const BASE_SECS: u64 = 1_767_225_600;

#[derive(Debug, Clone)]
pub struct Case {
    pub expect_fire: bool,
    pub events: Vec<Event>,
    pub line: u64,
}

impl Case {
    /// A case is one event (a map) or a sequence of events.
    pub fn from_yaml(v: &Value, expect_fire: bool, line: u64) -> Result<Case, String> {
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            Value::Object(_) => vec![v],
            _ => return Err("expected an event (a map) or a list of events".into()),
        };
        if items.is_empty() {
            return Err("a case needs at least one event".into());
        }
        let mut events = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let Value::Object(m) = item else {
                return Err(format!("event {} is not a map", i + 1));
            };
            events.push(event(m.clone(), i).map_err(|e| format!("event {}: {e}", i + 1))?);
        }
        Ok(Case {
            expect_fire,
            events,
            line,
        })
    }
}

fn event(mut m: Map<String, Value>, index: usize) -> Result<Event, String> {
    let at_secs = match m.remove("at") {
        Some(Value::Number(n)) => n.as_f64().ok_or("`at` must be a number of seconds")?,
        Some(_) => return Err("`at` must be a number of seconds".into()),
        None => index as f64,
    };
    if !(0.0..=1e9).contains(&at_secs) {
        return Err("`at` must be between 0 and 1e9 seconds".into());
    }
    let ts = Timestamp::from_nanos(BASE_SECS * 1_000_000_000 + (at_secs * 1e9) as u64);
    m.entry("ts")
        .or_insert_with(|| Value::String(ts.to_rfc3339()));
    let ts_str = m["ts"].clone();
    let pid = m.get("pid").cloned().unwrap_or(Value::from(4242));
    m.entry("pid").or_insert(pid.clone());
    m.entry("tid").or_insert(pid);
    for (k, v) in [("ppid", 1), ("uid", 0), ("euid", 0), ("gid", 0)] {
        m.entry(k).or_insert(Value::from(v));
    }
    m.entry("comm").or_insert(Value::from("test"));
    match m.get("kind").and_then(Value::as_str) {
        Some("flow") => {
            for k in [
                "packets_out",
                "bytes_out",
                "packets_in",
                "bytes_in",
                "flags_out",
                "flags_in",
                "syn_unanswered",
            ] {
                m.entry(k).or_insert(Value::from(0));
            }
            m.entry("src_port").or_insert(Value::from(40000));
            m.entry("transport").or_insert(Value::from("tcp"));
            m.entry("established").or_insert(Value::from(false));
            m.entry("icmp_unreachable").or_insert(Value::from(false));
            m.entry("first_seen").or_insert(ts_str.clone());
            m.entry("last_seen").or_insert(ts_str);
        }
        Some("protocol") => {
            m.entry("src_port").or_insert(Value::from(40000));
        }
        Some("exec") => {
            m.entry("ret").or_insert(Value::from(0));
            m.entry("argv").or_insert(Value::Array(Vec::new()));
        }
        Some(
            "open" | "rename" | "unlink" | "connect" | "accept" | "bind" | "listen" | "cred_change"
            | "capset" | "ptrace" | "module" | "bpf" | "memfd_create" | "mount",
        ) => {
            m.entry("ret").or_insert(Value::from(0));
        }
        Some(_) => {}
        None => return Err("missing `kind`".into()),
    }
    serde_json::from_value(Value::Object(m)).map_err(|e| e.to_string())
}

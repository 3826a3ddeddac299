//! Plain-text renderings for `heir devices` and `heir rama [--explain]` (JSON output is the
//! serde form of the same types).

use std::fmt::Write as _;

use crate::engine::{Listing, Report};
use crate::hospital::Hospital;
use crate::inventory::DeviceId;
use crate::score::Score;

/// The inventory table.
pub fn devices(l: &Listing) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "manufacturers from: {}", l.oui_source);
    let _ = writeln!(
        out,
        "{:<24} {:<28} {:<17} {:<15} {:<15} {:<17} {:<24} services",
        "ID", "NAME", "CLASS", "CRITICALITY", "IP", "MAC", "MANUFACTURER"
    );
    for d in &l.devices {
        let services: Vec<String> = d
            .services
            .values()
            .map(|r| {
                let s = &r.service;
                let tls = d
                    .tls
                    .get(&s.port)
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default();
                let flag = if s.cleartext { " (cleartext)" } else { "" };
                format!("{}/{} {}{tls}{flag}", s.port, s.transport, s.protocol)
            })
            .collect();
        let mut extra = String::new();
        if !d.default_credentials.is_empty() {
            let ports: Vec<String> = d.default_credentials.keys().map(u16::to_string).collect();
            let _ = write!(extra, "; default password on {}", ports.join(", "));
        }
        if !d.ae_titles.is_empty() {
            let t: Vec<&str> = d.ae_titles.iter().map(String::as_str).collect();
            let _ = write!(extra, "; AE {}", t.join(", "));
        }
        if d.is_protected() {
            extra.push_str("; protected");
        }
        let _ = writeln!(
            out,
            "{:<24} {:<28} {:<17} {:<15} {:<15} {:<17} {:<24} {}{extra}",
            d.id,
            d.name(),
            d.class(),
            d.criticality(),
            d.ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            d.mac.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
            d.manufacturer.as_deref().unwrap_or("-"),
            if services.is_empty() {
                "-".to_owned()
            } else {
                services.join(", ")
            },
        );
    }
    out
}

/// The hospital score and the device scores, worst first.
pub fn scores(h: &Hospital, scores: &[(DeviceId, Score)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "hospital RAMA {:.1} {} ({} devices: {} critical, {} high, {} medium, {} low)",
        h.value, h.band, h.devices, h.bands[3], h.bands[2], h.bands[1], h.bands[0]
    );
    let _ = writeln!(
        out,
        "{:<24} {:>5} {:<8}  {:>5} {:>5} {:>5} {:>5} {:>5}",
        "DEVICE", "RAMA", "BAND", "E", "V", "T", "R", "C"
    );
    for (id, s) in scores {
        let f = s.factors;
        let _ = writeln!(
            out,
            "{:<24} {:>5.1} {:<8}  {:>5.2} {:>5.2} {:>5.2} {:>5.2} {:>5.2}",
            id, s.value, s.band, f.exposure, f.vulnerability, f.threat, f.resilience, f.criticality
        );
    }
    out
}

/// One device's score taken apart, with the actions that would lower it most.
pub fn report(r: &Report) -> String {
    let e = &r.explanation;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}), {} / {}: RAMA {:.1} {} at {}",
        r.device, r.name, r.class, r.criticality, e.score.value, e.score.band, r.at
    );
    for c in &e.contributions {
        let sign = if c.factor == "resilience" { "-" } else { "+" };
        let _ = writeln!(
            out,
            "  {:<14} {:.4}  {sign}{:.1} points",
            c.factor, c.value, c.points
        );
    }
    for (x, w) in &e.exposures {
        let _ = writeln!(out, "  exposure       {w:.2}  {}", describe(x));
    }
    for (v, w) in &e.vulnerabilities {
        let m = r.matches.iter().find(|m| m.id == v.id);
        let on = m
            .map(|m| format!(" in {} {}", m.component, m.version))
            .unwrap_or_default();
        let kev = if v.exploited { ", exploited (KEV)" } else { "" };
        // Every feed that listed it: one line however many reported the CVE.
        let sources = m
            .filter(|m| !m.sources.is_empty() || !m.advisories.is_empty())
            .map(|m| {
                let mut names: Vec<String> = m.sources.iter().map(ToString::to_string).collect();
                for a in &m.advisories {
                    if !names.contains(a) {
                        names.push(a.clone());
                    }
                }
                format!(" [{}]", names.join(", "))
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  vulnerability  {w:.2}  {}{on}: CVSS {:.1} adjusted{kev}{sources}",
            v.id, v.cvss
        );
        // The action proposes one remediation; the others are in `--json`.
        if let Some(m) = m.filter(|m| m.remediations.len() > 1) {
            let mut kinds: Vec<(crate::vuln::RemediationCategory, usize)> = Vec::new();
            let preferred = m.preferred_remediation();
            for r in &m.remediations {
                if Some(r) == preferred {
                    continue;
                }
                match kinds.iter_mut().find(|(c, _)| *c == r.category) {
                    Some((_, n)) => *n += 1,
                    None => kinds.push((r.category, 1)),
                }
            }
            kinds.sort();
            let kinds: Vec<String> = kinds.iter().map(|(c, n)| format!("{n} {c}")).collect();
            let _ = writeln!(
                out,
                "                 {} more remediations ({}) in --json",
                m.remediations.len() - 1,
                kinds.join(", ")
            );
        }
    }
    for a in &r.recent_alerts {
        let _ = writeln!(
            out,
            "  alert          {:.2}  {} {} {} ({})",
            a.weight, a.ts, a.severity, a.title, a.rule
        );
    }
    if !e.capabilities.is_empty() {
        let c: Vec<&str> = e.capabilities.iter().map(|c| c.as_str()).collect();
        let _ = writeln!(out, "  resilience     {}", c.join(", "));
    }
    if !e.actions.is_empty() {
        let _ = writeln!(out, "actions that lower it most:");
        for a in e.actions.iter().take(5) {
            let _ = writeln!(
                out,
                "  -{:<5.1} → {:>5.1}  {}",
                a.lowers_by, a.score_after, a.action
            );
        }
    }
    out
}

fn describe(x: &crate::score::Exposure) -> String {
    use crate::score::Exposure::*;
    match x {
        Cleartext {
            port,
            transport,
            protocol,
        } => format!("cleartext {protocol} on {port}/{transport}"),
        Risky {
            port,
            transport,
            protocol,
        } => format!("risky {protocol} on {port}/{transport}"),
        Service {
            port,
            transport,
            protocol,
        } => format!("{protocol} listening on {port}/{transport}"),
        DefaultCredentials { port, protocol } => {
            format!("default password accepted by {protocol} on port {port}")
        }
        ObsoleteTls { port, version } => format!("{version} negotiated on port {port}"),
    }
}

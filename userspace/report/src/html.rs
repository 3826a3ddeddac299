//! The page: one HTML document with its style inline, text always escaped.
//!
//! Alert titles, device names and advisory texts can be chosen by an attacker (a device names
//! itself over DHCP, a rule quotes a packet), so every string goes through [`esc`] on its way
//! in; only the SVG the chart module drew (which escapes its own text) is inserted as is.

use std::fmt::Write as _;

use crate::Cover;

/// Escapes text for element content and double-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A time to the second, as the cover shows it.
pub fn when(ts: heir_model::Timestamp) -> String {
    let s = ts.to_string();
    match s.split_once('.') {
        Some((secs, _)) => format!("{secs}Z"),
        None => s,
    }
}

const STYLE: &str = "
body { font-family: sans-serif; color: #1a1a1a; margin: 2em auto; max-width: 1100px; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #999; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.cover { background: #f4f4f4; border: 1px solid #ccc; padding: 0.6em 1em; }
.na { color: #666; font-style: italic; }
.band-critical { color: #9b0000; font-weight: bold; }
.band-high { color: #b35900; font-weight: bold; }
.legend span { display: inline-block; margin-right: 1em; }
.legend i { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.3em; vertical-align: middle; }
figure { margin: 0.5em 0; }
figcaption { font-size: 0.9em; color: #444; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { page-break-after: avoid; }
  figure, table { page-break-inside: avoid; }
  .cover { background: none; }
  a { color: inherit; text-decoration: none; }
}
";

/// A document being written, section by section.
pub struct Doc {
    body: String,
}

impl Doc {
    /// Starts the page with the cover: role, period, sources and generation time.
    pub fn new(title: &str, cover: &Cover) -> Doc {
        let mut body = String::new();
        let _ = write!(
            body,
            "<h1>{}</h1>\n<div class=\"cover\" id=\"cover\">\n<p><b>For:</b> <span id=\"role\">{}</span></p>\n\
             <p><b>Covers:</b> {} to {}</p>\n<p><b>Generated:</b> {}</p>\n<p><b>Data sources:</b></p>\n<ul>",
            esc(title),
            esc(cover.role.as_str()),
            esc(&when(cover.window.since)),
            esc(&when(cover.window.until)),
            esc(&when(cover.generated)),
        );
        for s in &cover.sources {
            let _ = write!(body, "<li>{}</li>", esc(s));
        }
        body.push_str("</ul>\n</div>\n");
        Doc { body }
    }

    /// Opens a section: `id` is a fixed identifier, `title` is escaped.
    pub fn section(&mut self, id: &'static str, title: &str) -> &mut Self {
        let _ = write!(
            self.body,
            "<section id=\"{id}\">\n<h2>{}</h2>\n",
            esc(title)
        );
        self
    }

    pub fn end(&mut self) -> &mut Self {
        self.body.push_str("</section>\n");
        self
    }

    /// A paragraph of escaped text.
    pub fn p(&mut self, text: &str) -> &mut Self {
        let _ = writeln!(self.body, "<p>{}</p>", esc(text));
        self
    }

    /// Says plainly that something is not available, and why.
    pub fn not_available(&mut self, why: &str) -> &mut Self {
        let _ = writeln!(self.body, "<p class=\"na\">Not available: {}</p>", esc(why));
        self
    }

    /// A chart the chart module drew, with its caption and legend.
    pub fn figure(&mut self, svg: &str, caption: &str, legend: &[(String, String)]) -> &mut Self {
        self.body.push_str("<figure>\n");
        self.body.push_str(svg);
        if !legend.is_empty() {
            self.body.push_str("<div class=\"legend\">");
            for (colour, name) in legend {
                let _ = write!(
                    self.body,
                    "<span><i style=\"background:{}\"></i>{}</span>",
                    esc(colour),
                    esc(name)
                );
            }
            self.body.push_str("</div>");
        }
        let _ = writeln!(
            self.body,
            "<figcaption>{}</figcaption>\n</figure>",
            esc(caption)
        );
        self
    }

    /// A table with an id; every cell is escaped. Cells that parse as numbers are aligned
    /// right.
    pub fn table(&mut self, id: &'static str, head: &[&str], rows: &[Vec<String>]) -> &mut Self {
        let _ = write!(self.body, "<table id=\"table-{id}\">\n<thead><tr>");
        for h in head {
            let _ = write!(self.body, "<th>{}</th>", esc(h));
        }
        self.body.push_str("</tr></thead>\n<tbody>\n");
        for row in rows {
            self.body.push_str("<tr>");
            for cell in row {
                let numeric = !cell.is_empty()
                    && cell
                        .chars()
                        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | '%'));
                let class = if numeric {
                    " class=\"n\""
                } else if let Some(b) = ["critical", "high"].iter().find(|b| cell == *b) {
                    if *b == "critical" {
                        " class=\"band-critical\""
                    } else {
                        " class=\"band-high\""
                    }
                } else {
                    ""
                };
                let _ = write!(self.body, "<td{class}>{}</td>", esc(cell));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</tbody>\n</table>\n");
        self
    }

    /// The complete document.
    pub fn finish(self, title: &str) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
            esc(title),
            self.body
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert(\"x\")</script> & 'y'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(esc("a\u{0}b"), "a\u{fffd}b");
    }
}

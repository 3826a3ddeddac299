//! The four readers' views. Each is a type built only from what its reader may see; see the
//! crate documentation for the boundary and `README.md` beside the crate for why.

pub mod hospital;
pub mod manufacturer;
pub mod public;
pub mod regulator;
pub mod release;

use crate::Error;
use crate::charts::{self, PALETTE, Series};
use crate::html::Doc;
use release::Released;

/// A released histogram as a bar chart (one bar per shown cell) and a table; a withheld one
/// as a plain sentence without its contributor count.
pub(crate) fn released_section(
    doc: &mut Doc,
    id: &'static str,
    title: &str,
    what: &str,
    k: u32,
    r: Option<&Released>,
) -> Result<(), Error> {
    doc.section(id, title);
    match r {
        None => {
            doc.not_available(&format!(
                "withheld: fewer than {k} contributors in this period"
            ));
        }
        Some(r) => {
            let labels: Vec<String> = r.cells().iter().map(|c| c.label.to_owned()).collect();
            let series = [Series {
                name: what.to_owned(),
                colour: PALETTE[0],
                values: r
                    .cells()
                    .iter()
                    .map(|c| c.value.unwrap_or(0) as f64)
                    .collect(),
            }];
            let svg = charts::stacked_bars(id, what, &labels, &series)?;
            doc.figure(
                &svg,
                &format!(
                    "{what}: {} contributors or more, discrete Laplace noise with ε = {}, cells below {} not shown.",
                    r.k(),
                    r.epsilon(),
                    r.k()
                ),
                &[],
            );
            let rows: Vec<Vec<String>> = r
                .cells()
                .iter()
                .map(|c| {
                    vec![
                        c.label.to_owned(),
                        c.value
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| format!("fewer than {}", r.k())),
                    ]
                })
                .collect();
            doc.table(id, &["", what], &rows);
        }
    }
    doc.end();
    Ok(())
}

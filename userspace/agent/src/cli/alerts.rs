//! `heir alerts`: from the running agent's API, or from the store of a stopped one.

use anyhow::{Result, bail};
use heir_store::Read as _;

use super::{StateArgs, stopped_store};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    state: StateArgs,
    /// One JSON object per line, in the alert contract's shape.
    #[arg(long)]
    json: bool,
    /// Only the newest N.
    #[arg(long, default_value_t = 100)]
    last: usize,
    /// Keep printing new alerts as the running agent raises them.
    #[arg(long)]
    follow: bool,
}

fn print_alert(a: &heir_api::Stored, json: bool) {
    if json {
        println!("{}", a.alert.to_json_line());
    } else {
        println!(
            "#{:<6} {} {:<8} {:<20} {}{}{}",
            a.seq,
            a.alert.ts,
            a.alert.severity,
            a.alert.category,
            a.alert.title,
            a.alert
                .device
                .as_ref()
                .map(|d| format!(" [{d}]"))
                .unwrap_or_default(),
            if a.acknowledged.is_some() {
                " (acknowledged)"
            } else {
                ""
            }
        );
    }
}

pub async fn run(args: Args) -> Result<()> {
    let Args {
        state,
        json,
        last,
        follow,
    } = args;
    let config = state.config()?;
    // A running agent answers through its API; a stopped one's store is read directly.
    let client = heir_api::Client::new(config.api_socket());
    let query = heir_api::AlertQuery {
        limit: last.clamp(1, heir_api::alert::MAX_LIMIT),
        after: None,
        before: None,
        unacknowledged: false,
    };
    match client.alerts(&query).await {
        Ok(mut page) => {
            page.reverse();
            for a in &page {
                print_alert(a, json);
            }
            if follow {
                let mut stream = client
                    .stream(heir_api::StreamQuery {
                        alerts: true,
                        events: false,
                    })
                    .await?;
                while let Some(item) = stream.next().await {
                    if let heir_api::Live::Alert(a) = item? {
                        print_alert(&a, json);
                    }
                }
            }
            return Ok(());
        }
        Err(e) if e.is_connect() => {
            if follow {
                bail!(
                    "--follow needs a running agent (no API at {})",
                    config.api_socket().display()
                );
            }
        }
        Err(e) => return Err(e.into()),
    }
    let store = stopped_store(&config)?;
    let all = store.alerts(0, usize::MAX)?;
    for a in all.into_iter().rev().take(last).rev() {
        print_alert(&a, json);
    }
    Ok(())
}

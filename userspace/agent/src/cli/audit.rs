//! `heir audit`: the responder's audit log, from the running agent or its stopped store.

use anyhow::{Result, bail};
use heir_store::Read as _;

use super::{StateArgs, stopped_store};

pub async fn run(state: StateArgs, json: bool) -> Result<()> {
    let config = state.config()?;
    // A running agent answers through its API; a stopped one's store is read directly.
    let entries: Vec<heir_api::AuditEntry> =
        match heir_api::Client::new(config.api_socket()).audit().await {
            Ok(a) => match a.available() {
                Some(list) => list.clone(),
                None => bail!("the running agent has no responder"),
            },
            Err(e) if e.is_connect() => stopped_store(&config)?.audit()?,
            Err(e) => return Err(e.into()),
        };
    for e in entries {
        if json {
            println!("{}", serde_json::to_string(&e)?);
        } else {
            println!(
                "{} {:<8} {:<40} by {:<8} {} ({})",
                e.at, e.action, e.target, e.actor, e.outcome, e.reason
            );
        }
    }
    Ok(())
}

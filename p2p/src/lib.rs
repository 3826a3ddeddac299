//! heir-mesh: the Observatory for the Security of Electronic Medical Devices.
//!
//! Hospitals share what they detect, so one hospital's detection protects the others within
//! seconds, with no central server and without leaking patient data or their internal network.
//! Each node keeps a knowledge base of the consortium's indicators.
//!
//! - [`membership`]: the consortium key, credentials, invites, revocation.
//! - [`indicator`], [`tlp`]: the STIX 2.1 subset that is shared, with TLP 2.0 markings.
//! - [`privacy`]: the filter every outgoing item passes.
//! - [`group`]: sharing-group encryption and key rotation.
//! - [`wire`]: the signed envelope on the wire.
//! - [`trust`], [`validate`]: what a received message must pass before it is stored or relayed.
//! - [`knowledge`], [`observatory`]: what a node knows, and the views over it.
//! - [`exchange`]: STIX 2.1 bundle and MISP feed export and import.
//! - [`keystore`]: a node's keys and membership on disk.
//! - [`node`]: the libp2p node ([`Client`] + [`EventLoop`]).
//!
//! How the agent runs a node and shares its alerts:
//!
//! ```no_run
//! # async fn run(alert: heir_model::Alert) -> Result<(), Box<dyn std::error::Error>> {
//! use heir_mesh::keystore::Keystore;
//! use heir_mesh::node::{self, Config, Event, Setup};
//!
//! let store = Keystore::open("/var/lib/heir/mesh")?; // after `heir mesh init` or `join`
//! let (client, event_loop, mut events) = node::new(Setup::from_keystore(&store)?, Config::default())?;
//! tokio::spawn(event_loop.run());
//! // Every alert goes through the privacy filter; only external indicators leave.
//! match client.publish_alert(alert, None, None).await {
//!     Ok(receipt) => println!("shared {} bytes", receipt.size),
//!     Err(node::Error::Withheld(why)) => println!("kept local: {why}"),
//!     Err(e) => return Err(e.into()),
//! }
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Received { item, hospital, .. } => {
//!             println!("{hospital} shared a {}", item.kind());
//!         }
//!         // Corroborated past `Config::trust`'s thresholds: the responder's input.
//!         Event::Actionable(a) => println!("block {}? {}", a.addr, a.reason()),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod clock;
pub mod exchange;
pub mod group;
pub mod identity;
pub mod indicator;
pub mod keystore;
pub mod knowledge;
pub mod membership;
pub mod node;
pub mod observatory;
pub mod privacy;
pub mod tlp;
pub mod trust;
pub mod validate;
pub mod wire;

pub use clock::{Clock, ManualClock, SystemClock};
pub use identity::Identity;
pub use indicator::{Indicator, Item, Observable};
pub use membership::{ConsortiumKey, Credential, Invite, JoinRequest};
pub use node::{Client, Config, Event, EventLoop};
pub use tlp::Tlp;

/// An error with its causes, `outer: inner: root`, for logs and messages that carry one
/// line. Error messages in this crate name their own context and leave their cause to
/// [`std::error::Error::source`], so a caller printing the chain (`{e:#}` with anyhow, or
/// this) sees each cause once.
pub fn report(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{keystore, node, privacy, report};

    /// Each message names its own context only, so the chain carries every cause once.
    #[test]
    fn a_cause_is_reported_once() {
        let e = node::Error::Keystore(keystore::Error::Io {
            path: "/var/lib/heir/mesh/identity.key".into(),
            source: std::io::Error::other("disk on fire"),
        });
        assert_eq!(
            report(&e),
            "keystore: /var/lib/heir/mesh/identity.key: disk on fire"
        );
        let e = node::Error::Withheld(privacy::Withheld::BelowK {
            contributors: 2,
            k: 5,
        });
        assert_eq!(
            report(&e),
            "not shared: statistic has 2 contributors, below the k-anonymity threshold 5"
        );
    }
}

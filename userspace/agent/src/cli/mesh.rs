//! `heir mesh …`, `heir indicators`, `heir export`, `heir import`: membership of the
//! hospitals' consortium and the knowledge base it fills.

use std::time::Duration;

use anyhow::{Result, bail};

use super::StateArgs;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Stix,
    Misp,
}

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Found a consortium: this node becomes its first member and holds the consortium key.
    Init {
        /// This hospital's opaque label in the consortium (not its name).
        #[arg(long)]
        hospital: String,
        /// Sharing groups this hospital belongs to (for TLP:AMBER).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Days the membership is valid.
        #[arg(long, default_value_t = 365)]
        days: u64,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Print this node's join request, to hand to a member holding the consortium key.
    JoinRequest {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Admit a node (run where the consortium key is): prints its invitation.
    Invite {
        request: String,
        #[arg(long)]
        hospital: String,
        #[arg(long = "group")]
        groups: Vec<String>,
        #[arg(long, default_value_t = 365)]
        days: u64,
        /// Addresses the new node dials first (this node's, with /p2p/ id).
        #[arg(long)]
        bootstrap: Vec<String>,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Join with an invitation.
    Join {
        invite: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// The peers the running agent's mesh node is connected to.
    Peers {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        json: bool,
    },
    /// This node's identity and membership.
    Status {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        json: bool,
    },
}

fn keystore(state: &StateArgs) -> Result<heir_mesh::keystore::Keystore> {
    let config = state.config()?;
    Ok(heir_mesh::keystore::Keystore::open(
        heir_agent::mesh::keystore_dir(&config.data_dir),
    )?)
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n.saturating_mul(86_400))
}

async fn peers(state: StateArgs, json: bool) -> Result<()> {
    let config = state.config()?;
    let client = heir_api::Client::new(config.api_socket());
    let peers = match client.peers().await {
        Ok(p) => p,
        Err(e) if e.is_connect() => bail!(
            "no agent is running with data dir {} (its API answers peer queries)",
            config.data_dir.display()
        ),
        Err(e) => return Err(e.into()),
    };
    match peers.available() {
        None => {
            println!("the mesh is not running: this node is not a member (heir mesh init / join)")
        }
        Some(list) if json => println!("{}", serde_json::to_string_pretty(list)?),
        Some(list) => {
            for p in list {
                println!(
                    "{}  {}  trust {:.2}",
                    p.id,
                    p.name.as_deref().unwrap_or("-"),
                    p.trust
                );
            }
            println!("{} peer(s)", list.len());
        }
    }
    Ok(())
}

pub async fn run(cmd: Cmd) -> Result<()> {
    use heir_mesh::{Invite, JoinRequest};
    let now = heir_model::Timestamp::now();
    match cmd {
        Cmd::Init {
            hospital,
            groups,
            days: d,
            state,
        } => {
            let ks = keystore(&state)?;
            let m = ks.init(&hospital, &groups, days(d), now)?;
            println!(
                "consortium founded; this node is member `{}` until {}",
                m.credential.hospital, m.credential.expires
            );
            println!("keys in {}", ks.dir().display());
        }
        Cmd::JoinRequest { state } => {
            println!("{}", keystore(&state)?.identity()?.join_request().encode());
        }
        Cmd::Invite {
            request,
            hospital,
            groups,
            days: d,
            bootstrap,
            state,
        } => {
            let req = JoinRequest::decode(request.trim())?;
            let invite =
                keystore(&state)?.invite(&req, &hospital, &groups, days(d), bootstrap, now)?;
            println!("{}", invite.encode());
        }
        Cmd::Join { invite, state } => {
            let m = keystore(&state)?.join(&Invite::decode(invite.trim())?, now)?;
            println!(
                "joined as `{}` (groups: {}) until {}; the agent starts the mesh node on its next start",
                m.credential.hospital,
                m.credential.groups.join(", "),
                m.credential.expires
            );
        }
        Cmd::Peers { state, json } => peers(state, json).await?,
        Cmd::Status { state, json } => {
            let ks = keystore(&state)?;
            let peer = ks.identity()?.peer_id();
            let membership = ks.membership().ok();
            if json {
                let v = serde_json::json!({
                    "peer_id": peer.to_string(),
                    "member": membership.as_ref().map(|m| &m.credential.hospital),
                    "groups": membership.as_ref().map(|m| &m.credential.groups),
                    "expires": membership.as_ref().map(|m| m.credential.expires),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("peer id   {peer}");
                match membership {
                    Some(m) => {
                        println!("member    {}", m.credential.hospital);
                        println!("groups    {}", m.credential.groups.join(", "));
                        println!("expires   {}", m.credential.expires);
                    }
                    None => println!("member    no (run `heir mesh init` or `heir mesh join`)"),
                }
            }
        }
    }
    Ok(())
}

fn knowledge(state: &StateArgs) -> Result<heir_mesh::knowledge::KnowledgeBase> {
    let (kb, warnings) = heir_mesh::knowledge::load(&keystore(state)?, 1_000_000)?;
    for w in warnings {
        eprintln!("heir: {w}");
    }
    Ok(kb)
}

/// The knowledge base of a member; `None` on a node that never joined.
pub fn member_knowledge(state: &StateArgs) -> Result<Option<heir_mesh::knowledge::KnowledgeBase>> {
    let member = keystore(state).is_ok_and(|k| k.membership().is_ok());
    member.then(|| knowledge(state)).transpose()
}

pub fn export(format: ExportFormat, state: StateArgs) -> Result<()> {
    let kb = knowledge(&state)?;
    let entries: Vec<_> = kb.entries().cloned().collect();
    let vulns: Vec<_> = kb.vulnerabilities().map(|(v, _)| v.clone()).collect();
    let now = heir_model::Timestamp::now();
    let out = match format {
        ExportFormat::Stix => {
            let aggregates: Vec<_> = kb.aggregates().iter().map(|(_, a)| a.clone()).collect();
            heir_mesh::exchange::to_stix(&entries, &vulns, &aggregates, now)
        }
        ExportFormat::Misp => heir_mesh::exchange::to_misp(&entries, &vulns, now),
    };
    println!("{out}");
    Ok(())
}

//! `heir report`: the observatory's report for one reader, as one self-contained HTML file,
//! from the alerts (through the API of a running agent, or the store of a stopped one), the
//! RAMA state and the knowledge base. The views and the page
//! are in `heir-report`; this parses, gathers and writes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use heir_model::Timestamp;
use heir_report::{
    Cover, HospitalView, ManufacturerView, Page, PublicView, RegulatorView, Releaser, Role,
    Sources, Window,
};
use heir_store::Read as _;

use super::{StateArgs, stopped_store};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    state: StateArgs,
    /// Who the report is for: hospital, manufacturer, regulator or public.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// The manufacturer whose products the manufacturer report covers (as in the registry or
    /// the MAC vendor table).
    #[arg(long)]
    manufacturer: Option<String>,
    /// How far back the report looks, like 30d, 12h or 90m.
    #[arg(long, default_value = "30d", value_parser = parse_since)]
    since: Duration,
    /// The HTML file to write.
    #[arg(long)]
    out: PathBuf,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
}

fn parse_since(s: &str) -> Result<Duration, String> {
    let d = heir_agent::respond::blocklist::parse_ttl(s)
        .map_err(|e| e.replace("a block's time to live", "the period"))?;
    Ok(d)
}

/// The consortium's view and this hospital's name in it, when this node is a member.
fn consortium(
    data_dir: &Path,
    own_rama: f64,
    now: Timestamp,
) -> Result<Option<(heir_mesh::observatory::Report, String)>> {
    let dir = heir_agent::mesh::keystore_dir(data_dir);
    if !dir.is_dir() {
        return Ok(None);
    }
    let ks = heir_mesh::keystore::Keystore::open(&dir)?;
    let Ok(membership) = ks.membership() else {
        return Ok(None);
    };
    let (kb, warnings) = heir_mesh::knowledge::load(&ks, 1_000_000)?;
    for w in warnings {
        eprintln!("heir: {w}");
    }
    let report = heir_mesh::observatory::report(&kb, Some(own_rama), now);
    Ok(Some((report, membership.credential.hospital)))
}

/// Every alert line of a running agent since `since`, newest pages first, through its API;
/// `None` when no agent answers there.
async fn running_alerts(socket: &Path, since: Timestamp) -> Result<Option<Vec<heir_model::Alert>>> {
    let client = heir_api::Client::new(socket.to_owned());
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let query = heir_api::AlertQuery {
            limit: heir_api::alert::MAX_LIMIT,
            before,
            ..heir_api::AlertQuery::default()
        };
        let page = match client.alerts(&query).await {
            Ok(p) => p,
            Err(e) if e.is_connect() && before.is_none() => return Ok(None),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "reading alerts from the running agent at {}",
                    socket.display()
                )));
            }
        };
        let Some(oldest) = page.last().map(|s| s.seq) else {
            break;
        };
        let reached = page.iter().any(|s| s.alert.ts < since);
        out.extend(page.into_iter().map(|s| s.alert));
        if reached || oldest <= 1 {
            break;
        }
        before = Some(oldest);
    }
    out.reverse();
    Ok(Some(out))
}

pub async fn run(args: Args) -> Result<()> {
    if args.role == Role::Manufacturer && args.manufacturer.is_none() {
        return Err(heir_report::Error::NoManufacturer.into());
    }
    // Refuse an unwritable destination before reading anything.
    let parent = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        anyhow::bail!(
            "cannot write the report to {}: directory {} does not exist",
            args.out.display(),
            parent.display()
        );
    }
    let (config, state) = args.state.open()?;
    let now = Timestamp::now();
    let since = Timestamp::from_nanos(
        now.as_nanos()
            .saturating_sub(u64::try_from(args.since.as_nanos()).unwrap_or(u64::MAX)),
    );
    let window = Window { since, until: now };

    let mut sources = vec![format!(
        "RAMA state ({} devices)",
        state.rama.inventory().len()
    )];
    let store_path = config.data_dir.join("heir.redb");
    let live = running_alerts(&config.api_socket(), since).await?;
    let alerts: Vec<heir_model::Alert> = if let Some(all) = live {
        sources.push(format!(
            "the running agent's alerts ({} alert lines, through its API)",
            all.len()
        ));
        all
    } else if store_path.exists() {
        let store = stopped_store(&config)?;
        let all = store
            .alerts(0, usize::MAX)
            .with_context(|| format!("reading alerts from {}", store_path.display()))?;
        sources.push(format!("alert store ({} alert lines)", all.len()));
        all.into_iter().map(|s| s.alert).collect()
    } else {
        sources.push("alert store: none (the agent has not run here)".to_owned());
        Vec::new()
    };
    sources.push(format!(
        "vulnerability knowledge ({} vulnerabilities)",
        state.rama.knowledge().vulnerability_count()
    ));
    let hospital_score = state.rama.hospital().value;
    let (consortium, label) = match consortium(&config.data_dir, hospital_score, now)? {
        Some((r, label)) => {
            sources.push(format!(
                "consortium knowledge base ({} indicators)",
                r.indicators
            ));
            (Some(r), Some(label))
        }
        None => {
            sources.push("consortium: not a member".to_owned());
            (None, None)
        }
    };
    let hospital = HospitalView::build(
        Sources {
            rama: &state.rama,
            alerts: &alerts,
            consortium,
            label,
        },
        window,
    );
    let privacy = heir_mesh::privacy::Config::default();
    let cover = Cover {
        role: args.role,
        window,
        generated: now,
        sources,
    };
    let mut rng = rand::rng();
    let page = match args.role {
        Role::Hospital => hospital.render(&cover)?,
        Role::Manufacturer => {
            let name = args.manufacturer.as_deref().unwrap_or_default();
            ManufacturerView::new(name, hospital.products(), privacy.k_anonymity).render(&cover)?
        }
        Role::Regulator => {
            let mut r = Releaser::new(privacy, &mut rng);
            RegulatorView::release(&hospital, &mut r).render(&cover)?
        }
        Role::Public => {
            let mut r = Releaser::new(privacy, &mut rng);
            PublicView::release(&hospital, &mut r).render(&cover)?
        }
    };
    heir_report::write(&args.out, &page)?;
    println!("{}: {} report", args.out.display(), args.role);
    Ok(())
}

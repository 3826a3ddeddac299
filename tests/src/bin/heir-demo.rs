//! `heir-demo`: three hospitals, their meshed gateways and an attacker, on this machine, in
//! network namespaces (what `cargo xtask demo` runs). Needs root.
//!
//! ```text
//! heir-demo [--heir PATH] [--dir DIR] [--beats N] [--hold]
//! ```
//!
//! `--hold` keeps everything up after the story, with each hospital's terminal UI in a tmux
//! window, until Enter is pressed; then everything is torn down.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use heir_e2e::hospitals::{self, ATTACKER, World};

struct Args {
    heir: PathBuf,
    dir: Option<PathBuf>,
    beats: u32,
    hold: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        heir: std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("heir")))
            .unwrap_or_else(|| PathBuf::from("heir")),
        dir: None,
        beats: 16,
        hold: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--heir" => args.heir = value("--heir")?.into(),
            "--dir" => args.dir = Some(value("--dir")?.into()),
            "--beats" => {
                let v = value("--beats")?;
                args.beats = v
                    .parse()
                    .map_err(|_| format!("--beats `{v}`: not a number"))?;
            }
            "--hold" => args.hold = true,
            "-h" | "--help" => {
                println!("heir-demo [--heir PATH] [--dir DIR] [--beats N] [--hold]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if args.beats < 12 {
        return Err("--beats: at least 12 (the beacon detector needs them)".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("heir-demo: {e}");
            return ExitCode::from(2);
        }
    };
    if !args.heir.exists() {
        eprintln!(
            "heir-demo: no heir binary at {} (give --heir PATH)",
            args.heir.display()
        );
        return ExitCode::from(2);
    }
    interrupt_tears_down();
    let scratch = args.dir.is_none();
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("heir-demo-{}", std::process::id())));
    let code = match story(&args, &dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("heir-demo: {e}");
            ExitCode::FAILURE
        }
    };
    if scratch {
        let _ = std::fs::remove_dir_all(&dir);
    }
    code
}

/// Ctrl-C or SIGTERM in the middle of the story still leaves nothing behind: a thread waits
/// for the signal, removes the world and exits.
fn interrupt_tears_down() {
    // SAFETY: plain signal-set manipulation on this thread before any other thread exists;
    // children get a clean mask from std::process::Command.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        std::thread::spawn(move || {
            let mut sig = 0;
            libc::sigwait(&set, &mut sig);
            eprintln!("\nheir-demo: interrupted; tearing down");
            World::remove_leftovers(&World::id());
            std::process::exit(130);
        });
    }
}

fn story(args: &Args, dir: &std::path::Path) -> Result<(), hospitals::Error> {
    let mut world = World::build(&args.heir, dir, false)?;
    let story = hospitals::run(&mut world, args.beats)?;
    println!();
    for h in &world.hospitals {
        let mut by_category = std::collections::BTreeMap::<String, usize>::new();
        for a in h.alerts() {
            *by_category
                .entry(a["category"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        println!(
            "hospital {} ({}): alerts {by_category:?}; attacker blocked here: {}",
            h.letter.to_ascii_uppercase(),
            h.label,
            world.attacker_block(h.n as usize - 1).is_some()
        );
    }
    if let (Some(block), Some(attack)) = (story.block_at_b, story.attack_on_b) {
        println!(
            "B blocked {ATTACKER} {:.1}s before the attacker turned to B",
            (attack - block).as_secs_f64()
        );
    }
    if args.hold {
        let session = world.open_tuis()?;
        std::thread::sleep(Duration::from_secs(1));
        println!(
            "\nThe hospitals' terminal UIs: `tmux attach -t {session}` (a window each; Tab \
             switches views, q quits one). Press Enter here to tear everything down."
        );
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    let id = world.id.clone();
    drop(world);
    let left = World::leftovers(&id);
    if left.is_empty() {
        println!("torn down: no namespace, link, pinned map or process left");
        Ok(())
    } else {
        Err(hospitals::Error::Step {
            what: "teardown".into(),
            detail: format!("left behind: {left:?}"),
        })
    }
}

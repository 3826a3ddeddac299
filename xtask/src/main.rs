//! Project tasks: `cargo xtask setup | up | test | bench | demo`.
//!
//! Everything a fresh machine needs is installed here, so the README's two commands are all a
//! new user (or CI) runs.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Debian packages: LLVM 22 for bpf-linker, the IEEE OUI table for device manufacturers, and
/// the real tools the tests drive.
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "ieee-data",
    "iproute2",
    "procps",
    "strace",
    "openssl",
    "curl",
    "nmap",
    "tcpdump",
    "hping3",
    "hydra",
    "tmux",
    "dcmtk",
];
const BPF_LINKER_VERSION: &str = "0.13.0";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    match task {
        "setup" => setup(),
        "up" => {
            setup()?;
            up(rest)
        }
        "test" => {
            setup()?;
            test(rest)
        }
        "bench" => {
            setup()?;
            bench(rest)
        }
        "demo" => {
            setup()?;
            demo(rest)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n  setup   install what this machine lacks (idempotent)\n  up      set up, build and run `heir up` (agent + live view) as root\n  test    set up and run the whole test suite\n  bench   set up and run the benchmarks (figures on stdout)\n  demo    three hospitals, their meshed gateways and an attacker in namespaces (root)"
            );
            if task == "help" {
                Ok(())
            } else {
                bail!("unknown task `{task}`")
            }
        }
    }
}

/// Runs one named step, printing what it did and how long it took.
fn step(name: &str, f: impl FnOnce() -> Result<bool>) -> Result<()> {
    let t = Instant::now();
    let did = f().with_context(|| format!("setup step `{name}` failed"))?;
    eprintln!(
        "[setup] {name}: {} ({:.1}s)",
        if did { "installed" } else { "already present" },
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} exited with {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Option<String> {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0")
}

/// Prefix for commands that need root: nothing when root already, sudo otherwise.
fn as_root(program: &str) -> Command {
    if is_root() {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.arg(program);
        c
    }
}

fn setup() -> Result<()> {
    let t = Instant::now();
    step("nightly toolchain with rust-src", || {
        let installed =
            output(Command::new("rustup").args(["+nightly", "component", "list", "--installed"]));
        match installed {
            Some(list) if list.lines().any(|l| l.starts_with("rust-src")) => Ok(false),
            Some(_) => {
                run(Command::new("rustup").args([
                    "component",
                    "add",
                    "rust-src",
                    "--toolchain",
                    "nightly",
                ]))?;
                Ok(true)
            }
            None => {
                run(Command::new("rustup").args([
                    "toolchain",
                    "install",
                    "nightly",
                    "--profile",
                    "minimal",
                    "--component",
                    "rust-src",
                ]))?;
                Ok(true)
            }
        }
    })?;
    step(
        &format!("Debian packages ({})", APT_PACKAGES.join(", ")),
        || {
            let missing: Vec<&str> = APT_PACKAGES
                .iter()
                .copied()
                .filter(|p| {
                    !output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                        .is_some_and(|s| s.contains("install ok installed"))
                })
                .collect();
            if missing.is_empty() {
                return Ok(false);
            }
            run(as_root("apt-get").args(["update", "-qq"]))?;
            run(as_root("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing))?;
            Ok(true)
        },
    )?;
    step(
        &format!("bpf-linker {BPF_LINKER_VERSION} (LLVM 22)"),
        || {
            let have = output(Command::new("bpf-linker").arg("--version"));
            if have.is_some_and(|v| v.contains(BPF_LINKER_VERSION)) {
                return Ok(false);
            }
            run(Command::new("cargo")
                .env("LLVM_PREFIX", "/usr/lib/llvm-22")
                .args([
                    "install",
                    &format!("bpf-linker@{BPF_LINKER_VERSION}"),
                    "--locked",
                    "--no-default-features",
                    "--features",
                    "llvm-22",
                ]))?;
            Ok(true)
        },
    )?;
    eprintln!("[setup] done in {:.1}s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Builds these `(package, binary)` pairs in release; returns the directory they are in.
fn build_release(bins: &[(&str, &str)]) -> Result<std::path::PathBuf> {
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "--release"]);
    for (package, bin) in bins {
        cmd.args(["--package", package, "--bin", bin]);
    }
    run(&mut cmd)?;
    Ok(workspace_root()?.join("target/release"))
}

fn up(rest: &[String]) -> Result<()> {
    let bin = build_release(&[("heir-agent", "heir")])?.join("heir");
    run(as_root(bin.to_str().context("non-UTF-8 path")?)
        .arg("up")
        .args(rest))
}

/// Builds heir and the three-hospital world, and runs it. On a terminal the world stays up
/// afterwards with each hospital's terminal UI in tmux until Enter is pressed.
fn demo(rest: &[String]) -> Result<()> {
    let dir = build_release(&[("heir-agent", "heir"), ("heir-e2e", "heir-demo")])?;
    let demo = dir.join("heir-demo");
    let mut cmd = as_root(demo.to_str().context("non-UTF-8 path")?);
    cmd.arg("--heir").arg(dir.join("heir"));
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        cmd.arg("--hold");
    }
    run(cmd.args(rest))
}

fn test(rest: &[String]) -> Result<()> {
    if !is_root() {
        eprintln!(
            "[test] WARNING: not root: the kernel and network tests will FAIL (they need root); CI runs as root"
        );
    }
    run(Command::new("cargo")
        .args([
            "test",
            "--workspace",
            "--exclude",
            "heir-probes",
            "--locked",
            // Every failing test binary is reported, not only the first.
            "--no-fail-fast",
        ])
        .args(rest))
}

fn bench(rest: &[String]) -> Result<()> {
    run(Command::new("cargo")
        .args([
            "bench",
            "--workspace",
            "--exclude",
            "heir-probes",
            "--locked",
        ])
        .args(rest))?;
    run(Command::new("cargo").args([
        "build",
        "--release",
        "--package",
        "heir-agent",
        "--package",
        "heir-e2e",
    ]))?;
    let root = workspace_root()?;
    let heir = root.join("target/release/heir");
    let actor = root.join("target/release/heir-actor");
    run(as_root(heir.to_str().context("non-UTF-8 path")?)
        .args(["bench", "overhead", "--actor"])
        .arg(&actor))?;
    run(as_root(heir.to_str().context("non-UTF-8 path")?).args(["bench", "throughput"]))
}

fn workspace_root() -> Result<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(dir
        .parent()
        .context("xtask lives in the workspace")?
        .to_owned())
}

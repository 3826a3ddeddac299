//! Project tasks: `cargo xtask setup | up | test | bench | demo | fuzz | soak | flood`.
//!
//! Everything a fresh machine needs is installed here, so the README's two commands are all a
//! new user (or CI) runs.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Debian packages: LLVM 22 for bpf-linker, the IEEE OUI table for device manufacturers, and
/// the real tools the tests drive (chromium renders the observatory reports headless).
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
    "openssh-server",
    "openssh-client",
    // The injection test attaches gdb to a running daemon.
    "gdb",
    // The report test renders each role's HTML report in a real browser.
    "chromium",
    // A bench tool: `heir bench overhead` runs it beside heir as the baseline monitor.
    "bpftrace",
    // dig: the known-indicator test queries a reported domain as a device would.
    "bind9-dnsutils",
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
        "fuzz" => {
            setup()?;
            fuzz(rest)
        }
        "soak" => {
            setup()?;
            soak(rest)
        }
        "flood" => {
            setup()?;
            flood(rest)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n  setup   install what this machine lacks (idempotent)\n  up      set up, build and run `heir up` (agent + live view) as root\n  test    set up and run the whole test suite [--repeat N: the live tests N times]\n  soak    kill -9 the real agent under load, N times, and check nothing was lost [--rounds N, default 100]\n  flood   flood the real agent with open() events and check it holds [--seconds N, default 60] [--generators N]\n  bench   set up and run the benchmarks (figures on stdout)\n  demo    three hospitals, their meshed gateways and an attacker in namespaces (root)\n  fuzz    run every fuzz target (libFuzzer, nightly) [--secs N, default 60] [TARGET...]"
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

/// The test binaries that drive the kernel, network namespaces, real tools and real nodes: the
/// ones a slow or busy machine could make flaky, and so the ones `--repeat` runs again.
const LIVE_TESTS: &[(&str, &[&str])] = &[
    (
        "heir-e2e",
        &["kernel_sensor", "xdp", "hospitals", "store_crash"],
    ),
    ("heir-agent", &["cli", "xdp_netns", "soak"]),
    ("heir-mesh", &["mesh", "netns", "lifecycle", "privacy"]),
    ("heir-detect", &["real_tools", "real_scans"]),
    ("heir-api", &["socket"]),
    ("heir-tui", &["sync"]),
];

fn test(rest: &[String]) -> Result<()> {
    if !is_root() {
        eprintln!(
            "[test] WARNING: not root: the kernel and network tests will FAIL (they need root); CI runs as root"
        );
    }
    if let Some(at) = rest.iter().position(|a| a == "--repeat") {
        let n = rest
            .get(at + 1)
            .context("--repeat needs a number of rounds")?;
        let rounds: u32 = n
            .parse()
            .with_context(|| format!("--repeat {n}: not a number of rounds"))?;
        let mut others = rest.to_vec();
        others.drain(at..at + 2);
        return repeat(rounds, &others);
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

/// `cargo xtask test --repeat N`: runs the live tests ([`LIVE_TESTS`]) N times, each round to
/// its end, and prints which binaries failed in which round. Fails if any round failed.
fn repeat(rounds: u32, rest: &[String]) -> Result<()> {
    let mut failures: Vec<(u32, String)> = Vec::new();
    let t = Instant::now();
    for round in 1..=rounds {
        let started = Instant::now();
        let mut failed_here = Vec::new();
        for (package, tests) in LIVE_TESTS {
            let mut cmd = Command::new("cargo");
            cmd.args(["test", "--locked", "--no-fail-fast", "--package", package]);
            for t in *tests {
                cmd.args(["--test", t]);
            }
            let status = cmd
                .args(rest)
                .status()
                .with_context(|| format!("running the tests of {package}"))?;
            if !status.success() {
                failed_here.push(package.to_string());
            }
        }
        eprintln!(
            "[test] round {round}/{rounds}: {} ({:.0}s)",
            if failed_here.is_empty() {
                "passed".to_owned()
            } else {
                format!("FAILED in {}", failed_here.join(", "))
            },
            started.elapsed().as_secs_f64()
        );
        failures.extend(failed_here.into_iter().map(|p| (round, p)));
    }
    let failed_rounds = {
        let mut r: Vec<u32> = failures.iter().map(|(r, _)| *r).collect();
        r.dedup();
        r.len()
    };
    eprintln!(
        "[test] repeat: {rounds} rounds in {:.0}s, {} passed, {failed_rounds} failed",
        t.elapsed().as_secs_f64(),
        rounds as usize - failed_rounds
    );
    if failed_rounds > 0 {
        bail!("{failed_rounds} of {rounds} rounds failed: {failures:?}");
    }
    Ok(())
}

/// `cargo xtask soak [--rounds N]`: the kill -9 soak of the real agent (the test
/// `heir-agent/tests/soak.rs`, 10 rounds in the default run) for N rounds, 100 by default. Its
/// last line gives the figures: rounds, time, what was committed and what was lost.
fn soak(rest: &[String]) -> Result<()> {
    let mut rounds: u32 = 100;
    let mut args = rest.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => {
                let v = args.next().context("--rounds needs a number")?;
                rounds = v
                    .parse()
                    .with_context(|| format!("--rounds {v}: not a number of rounds"))?;
            }
            other => bail!("soak: unknown argument `{other}` (only --rounds N)"),
        }
    }
    run(Command::new("cargo")
        .args([
            "test",
            "--locked",
            "--package",
            "heir-agent",
            "--test",
            "soak",
            "--",
            "--nocapture",
        ])
        .env("HEIR_SOAK_ROUNDS", rounds.to_string()))
}

/// `cargo xtask flood [--seconds N] [--generators N] [--rss-bound-mib N]`: the release agent
/// under a sustained open() flood (`heir bench flood`, as root), with its figures.
fn flood(rest: &[String]) -> Result<()> {
    run(Command::new("cargo").args(["build", "--release", "--locked", "--package", "heir-agent"]))?;
    let heir = workspace_root()?.join("target/release/heir");
    run(as_root(heir.to_str().context("non-UTF-8 path")?)
        .args(["bench", "flood"])
        .args(rest))
}

fn bench(rest: &[String]) -> Result<()> {
    // The kernel figures first, from the release binary: syscall overhead beside bpftrace and
    // no monitor, the packet sensor's ns per packet, the ring's sustained rate. Then the
    // userspace hot paths (criterion: decode, recognise, detect, RAMA, mesh, API, TUI).
    run(Command::new("cargo").args(["build", "--release", "--locked", "--package", "heir-agent"]))?;
    let root = workspace_root()?;
    let heir = root.join("target/release/heir");
    let heir = heir.to_str().context("non-UTF-8 path")?;
    run(as_root(heir).args(["bench", "overhead"]))?;
    run(as_root(heir).args(["bench", "xdp"]))?;
    run(as_root(heir).args(["bench", "throughput"]))?;
    run(Command::new("cargo")
        .args([
            "bench",
            "--workspace",
            "--exclude",
            "heir-probes",
            "--locked",
        ])
        .args(rest))
}

fn workspace_root() -> Result<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(dir
        .parent()
        .context("xtask lives in the workspace")?
        .to_owned())
}

const CARGO_FUZZ_VERSION: &str = "0.13";

/// One fuzz target's run, as libFuzzer's final statistics tell it.
struct FuzzRun {
    target: String,
    secs: f64,
    executions: u64,
    corpus: u64,
    new_units: u64,
    crashes: Vec<std::path::PathBuf>,
}

/// `cargo xtask fuzz [--secs N] [TARGET...]`: builds the cargo-fuzz crate in `fuzz/` with
/// nightly and runs each target (all of them by default) for N seconds, starting from the
/// committed seed corpus `fuzz/corpus/<target>/`. New inputs go to
/// `fuzz/target/corpus/<target>/` (not committed), crashes to `fuzz/artifacts/<target>/`.
/// Prints one line per target: executions, corpus size, crashes; fails if any target crashed.
fn fuzz(rest: &[String]) -> Result<()> {
    let mut secs: u64 = 60;
    let mut only = Vec::new();
    let mut args = rest.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => {
                let v = args.next().context("--secs needs a number of seconds")?;
                secs = v
                    .parse()
                    .with_context(|| format!("--secs {v}: not a number of seconds"))?;
            }
            t if !t.starts_with('-') => only.push(t.to_owned()),
            other => bail!("cargo xtask fuzz: unknown option `{other}` (options: --secs N)"),
        }
    }
    step(&format!("cargo-fuzz {CARGO_FUZZ_VERSION}"), || {
        let have = output(Command::new("cargo").args(["fuzz", "--version"]));
        if have.is_some_and(|v| v.contains(&format!("cargo-fuzz {CARGO_FUZZ_VERSION}"))) {
            return Ok(false);
        }
        // `--version` takes a requirement (`^0.13`: the newest 0.13.x); `crate@0.13` does not.
        run(Command::new("cargo").args([
            "install",
            "cargo-fuzz",
            "--version",
            &format!("^{CARGO_FUZZ_VERSION}"),
            "--locked",
        ]))?;
        Ok(true)
    })?;
    let root = workspace_root()?;
    let dir = root.join("fuzz");
    if (only.is_empty() || only.iter().any(|t| t == "xdp_frame")) && !is_root() {
        bail!(
            "the xdp_frame target runs the XDP program in the kernel and needs root: run as root, or name the other targets"
        );
    }
    let objects = bpf_objects(&root)?;
    let cargo_fuzz = |args: &[&str]| {
        let mut c = Command::new("cargo");
        c.current_dir(&root)
            .args(["+nightly", "fuzz"])
            .args(args)
            .args(["--fuzz-dir", "fuzz"])
            // The probes cannot be built with the sanitizer flags cargo-fuzz sets; the
            // xdp_frame door gets the objects the normal build made.
            .env("HEIR_BPF_OBJECTS", &objects)
            // Sanitizer builds live in fuzz/target, whatever target directory the caller uses.
            .env_remove("CARGO_TARGET_DIR");
        c
    };
    run(&mut cargo_fuzz(&["build"]))?;
    let listed = output(&mut cargo_fuzz(&["list"])).context("listing the fuzz targets")?;
    let targets: Vec<String> = listed
        .lines()
        .map(str::trim)
        .filter(|t| !t.is_empty() && (only.is_empty() || only.iter().any(|o| o == t)))
        .map(str::to_owned)
        .collect();
    if let Some(missing) = only.iter().find(|o| !targets.contains(o)) {
        bail!(
            "no fuzz target `{missing}` (targets: {})",
            listed.split_whitespace().collect::<Vec<_>>().join(", ")
        );
    }
    let logs = dir.join("target/logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let mut runs = Vec::new();
    for t in &targets {
        let found = dir.join("target/corpus").join(t);
        let seeds = dir.join("corpus").join(t);
        let artifacts = dir.join("artifacts").join(t);
        for d in [&found, &artifacts] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let before = files(&artifacts)?;
        let log = logs.join(format!("{t}.log"));
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        eprintln!("[fuzz] {t}: {secs}s (log {})", log.display());
        let started = Instant::now();
        let status = cargo_fuzz(&["run", t])
            .arg(&found)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            .args(["-print_final_stats=1", "-timeout=10", "-rss_limit_mb=4096"])
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .status()
            .with_context(|| format!("running fuzz target {t}"))?;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let stat = |name: &str| {
            text.lines()
                .rev()
                .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let crashes: Vec<_> = files(&artifacts)?
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !status.success() && crashes.is_empty() {
            bail!(
                "fuzz target {t} failed without leaving a crash ({status}); see {}",
                log.display()
            );
        }
        runs.push(FuzzRun {
            target: t.clone(),
            secs: started.elapsed().as_secs_f64(),
            executions: stat("number_of_executed_units"),
            corpus: files(&found)?.len() as u64 + files(&seeds)?.len() as u64,
            new_units: stat("new_units_added"),
            crashes,
        });
    }
    println!(
        "{:<18} {:>7} {:>13} {:>9} {:>8} {:>5} {:>8}",
        "target", "secs", "executions", "exec/s", "corpus", "new", "crashes"
    );
    let (mut total, mut crashed) = (0u64, 0usize);
    for r in &runs {
        println!(
            "{:<18} {:>7.0} {:>13} {:>9.0} {:>8} {:>5} {:>8}",
            r.target,
            r.secs,
            r.executions,
            r.executions as f64 / r.secs.max(1e-9),
            r.corpus,
            r.new_units,
            r.crashes.len()
        );
        total += r.executions;
        crashed += r.crashes.len();
    }
    println!(
        "FIGURE fuzz: {} targets, {secs}s each, {total} executions, {crashed} crashes",
        runs.len()
    );
    for r in &runs {
        for c in &r.crashes {
            eprintln!(
                "[fuzz] {} crashed: {} (reproduce: cargo +nightly fuzz run --fuzz-dir fuzz {} {})",
                r.target,
                c.display(),
                r.target,
                c.display()
            );
        }
    }
    if crashed > 0 {
        bail!("{crashed} crashing inputs found; fix them and add each to fuzz/corpus/<target>/");
    }
    Ok(())
}

/// Builds the agent as usual and returns the directory its build script put the eBPF
/// objects in (cargo's `out_dir` for heir-agent).
fn bpf_objects(root: &std::path::Path) -> Result<std::path::PathBuf> {
    let out = Command::new("cargo")
        .current_dir(root)
        .args(["build", "--locked", "-p", "heir-agent", "--lib"])
        .args(["--message-format", "json-render-diagnostics"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("building heir-agent for its eBPF objects")?;
    if !out.status.success() {
        bail!("building heir-agent for its eBPF objects: {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = text
        .lines()
        .filter(|l| {
            l.contains("\"reason\":\"build-script-executed\"") && l.contains("#heir-agent@")
        })
        .find_map(|l| {
            let (_, rest) = l.split_once("\"out_dir\":\"")?;
            rest.split_once('"')
                .map(|(d, _)| std::path::PathBuf::from(d))
        })
        .context("cargo did not report heir-agent's build-script output directory")?;
    for name in ["heir-probes", "heir-xdp"] {
        let len = std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
        if len == 0 {
            bail!(
                "{} is empty: the agent was built without its eBPF programs (AYA_BUILD_SKIP?); run `cargo xtask setup`",
                dir.join(name).display()
            );
        }
    }
    Ok(dir)
}

/// The files directly in `dir` (none when it does not exist).
fn files(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in entries {
        let p = e
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if p.is_file() {
            out.push(p);
        }
    }
    Ok(out)
}

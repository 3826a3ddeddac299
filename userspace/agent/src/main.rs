//! `heir`: the command sysadmins and scripts run. It parses the command line, sets up
//! logging and the runtime, and hands over to the command's module in `cli/`.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    // A listing piped into `head` ends quietly, as Unix tools do, instead of panicking on a
    // closed stdout. The long-running commands keep ignoring SIGPIPE: a client that hangs up
    // on the agent's sockets must never kill it.
    if !cli.command.long_running() {
        // SAFETY: restoring the default disposition before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // Everything heir writes (store, alerts, RAMA state, logs) is for root and group heir.
    heir_agent::files::restrict_umask();
    logging(cli.command.ui_data_dir());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(cli.command.run()) {
        eprintln!("heir: {e:#}");
        std::process::exit(1);
    }
}

/// Logs go to stderr (`HEIR_LOG` filters them, default `warn`), except under the terminal
/// UI, which owns the screen: then they go to `heir.log` in the data directory.
fn logging(ui_data_dir: Option<std::path::PathBuf>) {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("HEIR_LOG").unwrap_or_else(|_| "warn".into())
    };
    let log_file = ui_data_dir.and_then(|dir| {
        let _ = std::fs::create_dir_all(&dir);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("heir.log"))
            .ok()
    });
    match log_file {
        Some(f) => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .init(),
        None => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
    }
}

//! heir's terminal UI.
//!
//! It talks only to the agent's local API ([`heir_api::Client`]), so `heir tui` attaches to a
//! running agent and `heir up` runs agent and UI in one process the same way. A background
//! task ([`sync`]) keeps a [`State`] snapshot current; the UI thread only draws that snapshot
//! and reads keys, so a slow or absent agent never freezes the screen and the UI never slows
//! the agent. When the agent goes away the UI says "disconnected, retrying" and reconnects.

pub mod app;
pub mod state;
pub mod sync;
pub mod view;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use heir_api::Client;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use tokio::sync::mpsc;

pub use app::{App, Outcome, Request, View};
pub use state::{Connection, State};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("terminal")]
    Terminal(#[from] std::io::Error),
    #[error("the UI thread panicked")]
    Panicked,
}

/// How long the UI waits for a key before redrawing from the latest state.
const FRAME: Duration = Duration::from_millis(200);

/// Runs the UI on this terminal until the operator quits. Needs a tokio runtime (the sync
/// task runs on it; the UI loop runs on a blocking thread). Restores the terminal on return
/// and on panic.
pub async fn run(client: Client) -> Result<(), Error> {
    let shared = Arc::new(Mutex::new(State::default()));
    let (tx, rx) = mpsc::channel(64);
    let sync = tokio::spawn(sync::run(client, shared.clone(), rx, sync::Pace::default()));
    let ui = tokio::task::spawn_blocking(move || ui(shared, tx)).await;
    sync.abort();
    ui.map_err(|_| Error::Panicked)?
}

fn ui(shared: Arc<Mutex<State>>, tx: mpsc::Sender<Request>) -> Result<(), Error> {
    let mut terminal = ratatui::try_init()?;
    let result = (|| {
        let mut app = App::default();
        loop {
            {
                let s = shared.lock().unwrap_or_else(|e| e.into_inner());
                terminal.draw(|f| view::draw(f, &app, &s))?;
            }
            if !event::poll(FRAME)? {
                continue;
            }
            let Event::Key(key) = event::read()? else {
                continue;
            };
            if key.kind != KeyEventKind::Press {
                continue;
            }
            let outcome = {
                let s = shared.lock().unwrap_or_else(|e| e.into_inner());
                app.handle_key(key, &s)
            };
            match outcome {
                Outcome::Quit => return Ok(()),
                Outcome::Send(r) => {
                    // A full queue means the agent is slow; dropping a keypress beats freezing.
                    if tx.try_send(r).is_err() {
                        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                        s.message = Some("busy: request not sent, try again".into());
                    }
                }
                Outcome::Nothing => {}
            }
        }
    })();
    ratatui::try_restore()?;
    result
}

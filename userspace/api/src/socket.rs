//! Serving the router on a Unix socket that only root and the `heir` group can open.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::Backend;

/// Socket file mode: owner (root) and group read/write, nobody else.
pub const MODE: u32 = 0o660;
/// The group whose members may use the API besides root.
pub const GROUP: &str = "heir";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: another agent is already listening there")]
    InUse { path: PathBuf },
    #[error("{path}: exists and is not a socket; not replacing it")]
    NotASocket { path: PathBuf },
    #[error("{path}: {what}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
}

/// A bound, listening API socket. Dropping it (or the end of [`Socket::serve`]) removes the
/// socket file.
#[derive(Debug)]
pub struct Socket {
    listener: Option<std::os::unix::net::UnixListener>,
    path: PathBuf,
    heartbeat: Duration,
}

impl Socket {
    /// Binds `path` with mode 0660, group `heir` when that group exists (else root's group).
    ///
    /// A stale socket file left by a crashed agent is replaced; a live one (another agent
    /// answers) or anything that is not a socket is refused, never removed. A missing parent
    /// directory is created with mode 0750, so the socket is never reachable by others even
    /// between bind and chmod. Needs no runtime: the agent can bind, then print `ready`,
    /// then serve.
    pub fn bind(path: impl AsRef<Path>) -> Result<Socket, Error> {
        let path = path.as_ref().to_path_buf();
        let io_err = |what| {
            let path = path.clone();
            move |source| Error::Io { path, what, source }
        };
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                    return Err(Error::InUse { path });
                }
                std::fs::remove_file(&path).map_err(io_err("removing the stale socket"))?;
            }
            Ok(_) => return Err(Error::NotASocket { path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("inspecting")(e)),
        }
        let gid = group_id(GROUP);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(io_err("creating the socket's directory"))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
                .map_err(io_err("restricting the socket's directory"))?;
            if gid.is_some() {
                std::os::unix::fs::chown(dir, None, gid)
                    .map_err(io_err("giving the socket's directory to group heir"))?;
            }
        }
        let listener = std::os::unix::net::UnixListener::bind(&path).map_err(io_err("binding"))?;
        let mut socket = Socket {
            listener: Some(listener),
            path,
            heartbeat: crate::server::HEARTBEAT,
        };
        socket.restrict(gid)?;
        socket
            .listener
            .as_ref()
            .expect("bound")
            .set_nonblocking(true)
            .map_err(|source| Error::Io {
                path: socket.path.clone(),
                what: "setting non-blocking",
                source,
            })?;
        // On an error above, dropping `socket` removes the file again.
        Ok(socket)
    }

    fn restrict(&mut self, gid: Option<u32>) -> Result<(), Error> {
        let path = &self.path;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(MODE)).map_err(
            |source| Error::Io {
                path: path.clone(),
                what: "setting mode 0660",
                source,
            },
        )?;
        if gid.is_some() {
            std::os::unix::fs::chown(path, None, gid).map_err(|source| Error::Io {
                path: path.clone(),
                what: "giving the socket to group heir",
                source,
            })?;
        }
        Ok(())
    }

    /// How long a live stream may be silent before the server sends a heartbeat
    /// (default [`crate::server::HEARTBEAT`]).
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves `backend` until `shutdown` resolves, then ends live streams, waits for the
    /// requests in flight and removes the socket file. Must run inside a tokio runtime.
    ///
    /// Each connection's caller is read from its peer credentials; `access` says which of
    /// them are operators.
    pub async fn serve<B: Backend>(
        mut self,
        backend: Arc<B>,
        access: crate::Access,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let std_listener = self.listener.take().expect("a bound socket has a listener");
        let listener =
            tokio::net::UnixListener::from_std(std_listener).map_err(|source| Error::Io {
                path: self.path.clone(),
                what: "registering with the runtime",
                source,
            })?;
        let (close_tx, close_rx) = watch::channel(false);
        let app = crate::server::router_closing(backend, close_rx, self.heartbeat, access)
            .into_make_service_with_connect_info::<crate::access::PeerCred>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = close_tx.send(true);
            })
            .await
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                what: "serving",
                source,
            })
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The gid of `name` from /etc/group, if the group exists.
pub fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    parse_group(&text, name)
}

/// Finds `name` in group(5) text: `name:password:gid:members`.
pub fn parse_group(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != name {
            return None;
        }
        f.next()?;
        f.next()?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_lines_are_parsed_by_name() {
        let text = "root:x:0:\nheirloom:x:7:\nheir:x:998:alice,bob\nbroken\n";
        assert_eq!(parse_group(text, "heir"), Some(998));
        assert_eq!(parse_group(text, "root"), Some(0));
        assert_eq!(parse_group(text, "nobody"), None);
        assert_eq!(parse_group("heir:x:notanumber:\n", "heir"), None);
        assert_eq!(parse_group("broken", "broken"), None);
    }
}

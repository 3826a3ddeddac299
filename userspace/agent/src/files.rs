//! The agent's state on disk is private: root reads and writes it, the `heir` group may read
//! it, nobody else may even list it.
//!
//! Alerts name devices and hosts, the store holds every event and the RAMA state the
//! hospital's weaknesses; none of it is for every local account. The data directory is
//! 2750 root:heir (set-group-id, so what is created inside stays in group `heir`), the
//! process umask is 027 (new files 0640 at most), and files an older version or an operator
//! left wider are narrowed when the agent starts.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The data directory's mode: owner all, group read and enter, set-group-id.
pub const DIR_MODE: u32 = 0o2750;
/// The widest a state file may be: owner read/write, group read.
pub const FILE_MODE: u32 = 0o640;
/// The umask that makes every file the process creates at most [`FILE_MODE`].
pub const UMASK: u32 = 0o027;

/// Sets the process umask to [`UMASK`]. Called once by the binary, before any file exists.
pub fn restrict_umask() {
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe { libc::umask(UMASK as libc::mode_t) };
}

/// What [`secure_dir`] changed, for the operator's notice.
#[derive(Debug, Default)]
pub struct Narrowed {
    pub paths: Vec<(PathBuf, u32)>,
}

/// Creates `dir` if needed, gives it [`DIR_MODE`] and group `heir` (when the group exists),
/// and narrows every file and directory below it that others could read or the group could
/// write. Symlinks are left alone (never followed).
pub fn secure_dir(dir: &Path) -> io::Result<Narrowed> {
    std::fs::create_dir_all(dir)?;
    let gid = heir_api::socket::group_id(heir_api::socket::GROUP);
    if gid.is_some() {
        std::os::unix::fs::chown(dir, None, gid)?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
    let mut narrowed = Narrowed::default();
    narrow_below(dir, &mut narrowed)?;
    Ok(narrowed)
}

fn narrow_below(dir: &Path, out: &mut Narrowed) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = std::fs::symlink_metadata(entry.path())?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        // Others get nothing, the group never writes.
        let wanted = mode & !0o027;
        if wanted != mode {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(wanted))?;
            out.paths.push((entry.path(), mode));
        }
        if ft.is_dir() {
            narrow_below(&entry.path(), out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_files_are_narrowed_and_private_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        std::fs::create_dir_all(data.join("mesh")).unwrap();
        std::fs::set_permissions(data.join("mesh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let wide = data.join("rama.json");
        std::fs::write(&wide, b"{}").unwrap();
        std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o666)).unwrap();
        let key = data.join("mesh/identity");
        std::fs::write(&key, b"k").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let n = secure_dir(&data).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&wide), 0o640);
        assert_eq!(mode(&key), 0o600, "a private file stays private");
        assert_eq!(mode(&data), DIR_MODE);
        assert_eq!(mode(&data.join("mesh")), 0o750, "directories too");
        let mut changed = n.paths;
        changed.sort();
        assert_eq!(changed, vec![(data.join("mesh"), 0o755), (wide, 0o666)]);
    }
}

//! What differs between operating systems, in one place: opening files
//! that must be regular files, and deciding whether a file may be trusted
//! (Unix owners and modes). Elsewhere the checks that have no meaning are
//! skipped.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// Open `path` for reading, refusing anything but a regular file — without
/// blocking on a FIFO that someone put in its place.
pub fn open_regular(path: &Path) -> io::Result<(File, std::fs::Metadata)> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok((file, meta))
}

/// `path`'s whole content, if it is a regular file; None when it does not exist.
pub fn read_regular(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let (mut file, meta) = match open_regular(path) {
        Ok(opened) => opened,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // Sized from the file, plus one byte to see the end without a regrowth.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).saturating_add(1));
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Why a file was not read.
#[derive(Debug)]
pub enum Untrusted {
    Io(io::Error),
    /// Someone else could have written it.
    Because(String),
}

/// The text and permission bits of `path` (a config file), if it exists and
/// neither it nor its folder could have been written by another user: owned
/// by us (or root), not writable by others, and writable by the group only
/// when that group is our own primary group.
pub fn read_trusted(path: &Path) -> Result<Option<(String, u32)>, Untrusted> {
    let (mut file, meta) = match open_regular(path) {
        Ok(opened) => opened,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Untrusted::Io(e)),
    };
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::MetadataExt;
        check_owner(&meta, "it").map_err(Untrusted::Because)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let dir_meta = std::fs::metadata(dir).map_err(Untrusted::Io)?;
            check_owner(&dir_meta, "its folder").map_err(Untrusted::Because)?;
        }
        meta.mode()
    };
    #[cfg(not(unix))]
    let mode = {
        let _ = &meta;
        0
    };
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(Untrusted::Io)?;
    Ok(Some((text, mode)))
}

#[cfg(unix)]
fn check_owner(meta: &std::fs::Metadata, what: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    #[allow(unsafe_code)]
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(format!("{what} belongs to another user (uid {})", meta.uid()));
    }
    let mode = meta.mode();
    if mode & 0o002 != 0 {
        return Err(format!("{what} is writable by every user"));
    }
    if mode & 0o020 != 0 && meta.gid() != gid {
        return Err(format!("{what} is writable by group {}", meta.gid()));
    }
    Ok(())
}

/// Whether the current user owns the file `meta` describes (on Unix; elsewhere, yes).
pub fn is_mine(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid cannot fail and touches no memory.
        #[allow(unsafe_code)]
        let uid = unsafe { libc::geteuid() };
        meta.uid() == uid
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}

/// The process holding a `flock` on `path`, as `(pid, name)`, when
/// `/proc/locks` tells it (Linux).
pub fn lock_holder(path: &Path) -> Option<(u32, String)> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata(path).ok()?.ino();
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        // `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF`: pid, then major:minor:inode.
        let pid = locks.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (kind, pid, id) = (*fields.get(1)?, *fields.get(4)?, *fields.get(5)?);
            (kind == "FLOCK" && id.rsplit(':').next()?.parse::<u64>().ok()? == inode)
                .then(|| pid.parse::<u32>().ok())?
        })?;
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        Some((pid, crate::report::sanitize(name.trim())))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// The process listening on TCP `port` on this host, as `(pid, name)`, when
/// `/proc` tells it (Linux, and only for processes we may look into).
pub fn port_owner(port: u16) -> Option<(u32, String)> {
    #[cfg(target_os = "linux")]
    {
        let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|table| std::fs::read_to_string(table).ok())
            .flat_map(|text| {
                text.lines()
                    .skip(1)
                    .filter_map(|line| {
                        let fields: Vec<&str> = line.split_whitespace().collect();
                        let local_port = fields.get(1)?.rsplit(':').next()?;
                        // State 0A is LISTEN.
                        (u16::from_str_radix(local_port, 16).ok()? == port && *fields.get(3)? == "0A")
                            .then(|| fields.get(9).map(|inode| format!("socket:[{inode}]")))?
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        if inodes.is_empty() {
            return None;
        }
        for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = proc_entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                let Ok(target) = std::fs::read_link(fd.path()) else {
                    continue;
                };
                if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                    let name = std::fs::read_to_string(proc_entry.path().join("comm")).unwrap_or_default();
                    return Some((pid, crate::report::sanitize(name.trim())));
                }
            }
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = port;
        None
    }
}

/// What keeps a private file (the store, `serve.key`) private, for messages.
/// On Unix it is created 0600. Windows has no modes: the file inherits its
/// folder's access list, which under `%APPDATA%` (the default home) grants
/// the user, SYSTEM and Administrators only.
pub const PRIVATE_FILE: &str = if cfg!(unix) {
    "0600"
} else {
    "access as its folder's ACL allows"
};

/// Let Ctrl-C reach a child alone while this process waits for it: the
/// console delivers it to every process attached. Unix has no need (`exec`
/// replaces the process there).
pub fn ignore_interrupts() {
    #[cfg(windows)]
    // SAFETY: only sets the C runtime's SIGINT disposition to "ignore", a
    // constant; no memory is touched. The C runtime installs a console
    // handler of its own for it, which, unlike `SetConsoleCtrlHandler(NULL,
    // TRUE)`, the child does not inherit.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

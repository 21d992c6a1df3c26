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
        check_acl(&acl::of_file(&file), "it")?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let dir_meta = std::fs::metadata(dir).map_err(Untrusted::Io)?;
            check_owner(&dir_meta, "its folder").map_err(Untrusted::Because)?;
            check_acl(&acl::of_path(dir), "its folder")?;
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

/// Refuse an access ACL (Linux) that lets another user or group write:
/// the mode bits alone show it as the group's bits, which may pass.
#[cfg(unix)]
fn check_acl(entries: &io::Result<Option<Vec<u8>>>, what: &str) -> Result<(), Untrusted> {
    let bytes = match entries {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(()),
        Err(e) => {
            return Err(Untrusted::Io(io::Error::new(
                e.kind(),
                format!("cannot read the ACL of {what}: {e}"),
            )));
        }
    };
    let (uid, gid) = effective_ids();
    match acl::writer(bytes, uid, gid) {
        Some(who) => Err(Untrusted::Because(format!(
            "{what} has an access ACL that lets {who} write"
        ))),
        None => Ok(()),
    }
}

/// A folder above `dir`, up to the home folder, that every user may write
/// and whose sticky bit is off: anyone could rename `dir` away and put
/// another in its place (ssh warns about the same).
pub fn writable_ancestor(dir: &Path) -> Option<std::path::PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        let absolute = std::fs::canonicalize(dir).ok()?;
        for ancestor in absolute.ancestors().skip(1) {
            let mode = std::fs::metadata(ancestor).ok()?.mode();
            if mode & 0o002 != 0 && mode & 0o1000 == 0 {
                return Some(ancestor.to_path_buf());
            }
            if home.as_deref().and_then(|h| std::fs::canonicalize(h).ok()).as_deref() == Some(ancestor) {
                break;
            }
        }
        None
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// This process's effective user and group ids.
#[cfg(unix)]
fn effective_ids() -> (libc::uid_t, libc::gid_t) {
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    #[allow(unsafe_code)]
    unsafe {
        (libc::geteuid(), libc::getegid())
    }
}

#[cfg(unix)]
fn check_owner(meta: &std::fs::Metadata, what: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = effective_ids();
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

/// POSIX access ACLs as Linux keeps them: the `system.posix_acl_access`
/// extended attribute, a little-endian version (2) and then entries of
/// tag (u16), permissions (u16) and user or group id (u32).
#[cfg(unix)]
mod acl {
    use std::ffi::CString;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    const NAME: &std::ffi::CStr = c"system.posix_acl_access";
    const USER: u16 = 0x02;
    const GROUP: u16 = 0x08;
    const MASK: u16 = 0x10;
    const WRITE: u16 = 0x02;

    /// The raw ACL of an open file; None when it has none (or the system keeps none).
    #[allow(unsafe_code)]
    pub fn of_file(file: &std::fs::File) -> io::Result<Option<Vec<u8>>> {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: the buffer is valid for `len` bytes; fgetxattr writes at most that.
        read(|buf, len| unsafe { libc::fgetxattr(fd, NAME.as_ptr(), buf, len) })
    }

    /// The raw ACL of `path`.
    #[allow(unsafe_code)]
    pub fn of_path(path: &Path) -> io::Result<Option<Vec<u8>>> {
        let path =
            CString::new(path.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `path` is NUL-terminated; the buffer is valid for `len` bytes.
        read(|buf, len| unsafe { libc::getxattr(path.as_ptr(), NAME.as_ptr(), buf, len) })
    }

    #[cfg(target_os = "linux")]
    fn read(get: impl Fn(*mut libc::c_void, usize) -> libc::ssize_t) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; 4096];
        let n = get(buf.as_mut_ptr().cast(), buf.len());
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENODATA | libc::EOPNOTSUPP) => Ok(None),
                _ => Err(e),
            };
        }
        buf.truncate(n as usize);
        Ok(Some(buf))
    }

    #[cfg(not(target_os = "linux"))]
    fn read(_get: impl Fn(*mut libc::c_void, usize) -> libc::ssize_t) -> io::Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Who, other than `uid`, `gid` and root, the ACL `bytes` lets write
    /// (a named entry's permissions limited by the mask), as words.
    pub fn writer(bytes: &[u8], uid: u32, gid: u32) -> Option<String> {
        let version = bytes.get(..4).map(|v| u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
        if version != Some(2) || !(bytes.len() - 4).is_multiple_of(8) {
            return Some("whoever it names (its format is unknown)".into());
        }
        let entries: Vec<(u16, u16, u32)> = bytes[4..]
            .chunks_exact(8)
            .map(|e| {
                (
                    u16::from_le_bytes([e[0], e[1]]),
                    u16::from_le_bytes([e[2], e[3]]),
                    u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
                )
            })
            .collect();
        let mask = entries.iter().find(|e| e.0 == MASK).map_or(0o7, |e| e.1);
        entries.iter().find_map(|&(tag, perm, id)| {
            let writes = perm & mask & WRITE != 0 && id != 0;
            match tag {
                USER if writes && id != uid => Some(format!("user {id}")),
                GROUP if writes && id != gid => Some(format!("group {id}")),
                _ => None,
            }
        })
    }

    #[cfg(test)]
    mod tests {
        fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
            let mut bytes = 2u32.to_le_bytes().to_vec();
            for &(tag, perm, id) in entries {
                bytes.extend(tag.to_le_bytes());
                bytes.extend(perm.to_le_bytes());
                bytes.extend(id.to_le_bytes());
            }
            bytes
        }

        const ANY: u32 = u32::MAX;

        #[test]
        fn a_named_writer_is_found_unless_the_mask_takes_write_away() {
            // user::rw- user:65534:rw- group::r-- mask::rw- other::r--
            let planted = acl(&[(1, 6, ANY), (2, 6, 65534), (4, 4, ANY), (16, 6, ANY), (32, 4, ANY)]);
            assert_eq!(super::writer(&planted, 1000, 1000).as_deref(), Some("user 65534"));
            let masked = acl(&[(1, 6, ANY), (2, 6, 65534), (4, 4, ANY), (16, 4, ANY), (32, 4, ANY)]);
            assert_eq!(super::writer(&masked, 1000, 1000), None);
            let group = acl(&[(1, 6, ANY), (8, 6, 50), (16, 6, ANY), (32, 0, ANY)]);
            assert_eq!(super::writer(&group, 1000, 1000).as_deref(), Some("group 50"));
            let mine = acl(&[(1, 6, ANY), (2, 6, 1000), (8, 6, 1000), (16, 6, ANY), (32, 0, ANY)]);
            assert_eq!(super::writer(&mine, 1000, 1000), None);
            assert!(super::writer(&[1, 0, 0, 0], 1000, 1000).is_some());
        }
    }
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

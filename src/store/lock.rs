//! The profile's lock: an exclusive `flock` on a file that is never
//! replaced, behind an in-process lock for the threads of one process.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Lock, Store};
use crate::error::{Error, Result};
use crate::report;

impl Store {
    /// Take the profile's exclusive lock, waiting up to `timeout`. Says so on
    /// stderr once the wait passes a second, so a user knows why nothing happens.
    ///
    /// Two threads of one process first queue on an in-process lock: where
    /// `flock` is emulated per process (NFS), the file lock alone would let
    /// both in. After locking, the path must still name the locked file: if
    /// someone deleted or replaced it meanwhile, another process can lock the
    /// new one, so start again.
    pub fn lock(&self, timeout: Duration) -> Result<Lock> {
        self.ensure_dir()?;
        let start = Instant::now();
        let timed_out = || Error::LockTimeout {
            path: self.lock_path.clone(),
            waited: timeout,
        };
        let (in_process, contended) = InProcessLock::acquire(&self.lock_path, timeout).ok_or_else(timed_out)?;
        let file = self.lock_file(start, timeout, contended)?;
        Ok(Lock {
            _file: file,
            _in_process: in_process,
            timeout,
        })
    }

    /// `flock` the file the lock path names, waiting until `start + timeout`;
    /// again when the path was deleted or replaced meanwhile.
    fn lock_file(&self, start: Instant, timeout: Duration, mut contended: bool) -> Result<File> {
        let timed_out = || Error::LockTimeout {
            path: self.lock_path.clone(),
            waited: timeout,
        };
        let mut announced = false;
        let mut pause = Duration::from_millis(5);
        loop {
            let file = self.open_lock_file()?;
            loop {
                match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
                    Ok(true) => break,
                    Ok(false) => contended = true,
                    Err(e) => return Err(Error::io("cannot lock", &self.lock_path, e)),
                }
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(timed_out());
                }
                if !announced && waited >= Duration::from_secs(1) {
                    report::note(&format!(
                        "waiting for another lightfi-token process using this profile (up to {} s more)…",
                        (timeout - waited).as_secs()
                    ));
                    announced = true;
                }
                std::thread::sleep(pause.min(timeout - waited));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            if same_file(&file, &self.lock_path) {
                report::debug(|| {
                    format!(
                        "locked {} after {} ms{}",
                        self.lock_path.display(),
                        start.elapsed().as_millis(),
                        if contended { " (another process held it)" } else { "" }
                    )
                });
                return Ok(file);
            }
            contended = true;
        }
    }

    /// Before a write under `lock`: when its file was deleted (or replaced)
    /// while held, another process may hold the file the path names now and
    /// be writing too. Then lock that one as well, so the two writes cannot
    /// interleave; the returned file holds it until dropped.
    pub(super) fn lock_still_current(&self, lock: &Lock) -> Result<Option<File>> {
        if same_file(&lock._file, &self.lock_path) {
            return Ok(None);
        }
        report::debug(|| format!("{} was deleted while held; locking it again", self.lock_path.display()));
        self.lock_file(Instant::now(), lock.timeout, true).map(Some)
    }

    fn open_lock_file(&self) -> Result<File> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(&self.lock_path)
            .map_err(|e| Error::io("cannot open the lock file", &self.lock_path, e))
    }

    /// Whether another process holds the profile's lock now, asked without
    /// waiting and without creating anything: None when there is no lock file.
    pub fn lock_is_held(&self) -> io::Result<Option<bool>> {
        let file = match File::open(&self.lock_path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let free = fs4::fs_std::FileExt::try_lock_exclusive(&file)?;
        // Dropping the file releases the lock we may have just taken.
        Ok(Some(!free))
    }
}

/// Whether the open `file` is the one `path` names now.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// The in-process half of the profile lock: one thread of this process at a
/// time per lock file, released on drop.
pub(super) struct InProcessLock(PathBuf);

static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
static RELEASED: std::sync::Condvar = std::sync::Condvar::new();

impl InProcessLock {
    /// The lock for `path`, and whether another thread held it first; None
    /// after `timeout`.
    fn acquire(path: &Path, timeout: Duration) -> Option<(InProcessLock, bool)> {
        let deadline = Instant::now() + timeout;
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        let mut contended = false;
        while held.iter().any(|p| p == path) {
            contended = true;
            let left = deadline.checked_duration_since(Instant::now())?;
            held = RELEASED.wait_timeout(held, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        held.push(path.to_path_buf());
        Some((InProcessLock(path.to_path_buf()), contended))
    }
}

impl Drop for InProcessLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|p| *p != self.0);
        RELEASED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Settings;
    use crate::store::Store;

    #[test]
    fn threads_of_one_process_take_the_lock_in_turn() {
        let home = tempfile::tempdir().unwrap();
        let s = Settings::for_tests(home.path(), "https://idp.example/oauth2");
        let inside = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    let _lock = Store::new(&s).lock(Duration::from_secs(10)).unwrap();
                    assert_eq!(inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst), 0);
                    std::thread::sleep(Duration::from_millis(5));
                    inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
    }
}

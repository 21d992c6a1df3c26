//! Helpers for login tests: a recording "browser", a pseudo-terminal for
//! stderr (so `get` may fall back to an interactive login, as at a real
//! terminal), free loopback ports and a minimal HTTP client.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1 and ::1.
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        if TcpListener::bind(("::1", port)).is_ok() || TcpListener::bind(("::1", 0)).is_err() {
            return port;
        }
    }
}

/// A `$BROWSER` that appends each URL it is given to a file, and does nothing else.
pub struct RecordingBrowser {
    pub script: PathBuf,
    pub log: PathBuf,
}

impl RecordingBrowser {
    pub fn new(dir: &Path) -> RecordingBrowser {
        let script = dir.join("record-browser.sh");
        let log = dir.join("browser.log");
        std::fs::write(&script, "#!/bin/sh\nprintf '%s\\n' \"$2\" >> \"$1\"\n").unwrap();
        make_executable(&script);
        RecordingBrowser { script, log }
    }

    /// The value for `BROWSER`.
    pub fn command(&self) -> String {
        format!("{} {}", self.script.display(), self.log.display())
    }

    pub fn urls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Wait until the browser was opened at least once; return the first URL.
    pub fn wait_for_url(&self, within: Duration) -> url::Url {
        let deadline = Instant::now() + within;
        loop {
            if let Some(first) = self.urls().first() {
                return url::Url::parse(first).expect("the browser got a URL");
            }
            assert!(Instant::now() < deadline, "the browser was never opened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A query parameter of `url`.
pub fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// `GET path` on 127.0.0.1:port, retrying while nothing listens yet.
/// Returns (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("nothing listens on {addr}: {e}"),
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A pseudo-terminal: hand `slave()` to a child as its stderr, and the child
/// sees a terminal there. Everything written to it is collected by a thread.
pub struct Pty {
    slave_path: PathBuf,
    collected: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _master: std::sync::Arc<File>,
}

impl Pty {
    pub fn open() -> Pty {
        // SAFETY: plain POSIX pty calls on a descriptor we own; checked results.
        let master = unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(fd >= 0, "posix_openpt failed");
            assert_eq!(libc::grantpt(fd), 0);
            assert_eq!(libc::unlockpt(fd), 0);
            File::from_raw_fd(fd)
        };
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: the buffer is large enough and NUL-terminated by ptsname_r.
        let slave_path = unsafe {
            use std::os::fd::AsRawFd;
            assert_eq!(libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()), 0);
            std::ffi::CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned()
        };
        let master = std::sync::Arc::new(master);
        let collected = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let (m, c) = (master.clone(), collected.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = (&*m).read(&mut buf) {
                if n == 0 {
                    break;
                }
                c.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            slave_path: PathBuf::from(slave_path),
            collected,
            _master: master,
        }
    }

    /// A new handle on the terminal side, for a child's stderr.
    pub fn slave(&self) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.slave_path)
            .unwrap()
    }

    /// Type `text` at the terminal, as a person at its keyboard.
    pub fn type_text(&self, text: &str) {
        (&*self._master).write_all(text.as_bytes()).unwrap();
    }

    /// Whether the terminal echoes what is typed (a program reading a
    /// password turns this off first).
    pub fn echoes(&self) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: tcgetattr fills the zeroed struct it is given; the master
        // reports the terminal's settings on Linux.
        unsafe {
            let mut termios: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(self._master.as_raw_fd(), &mut termios), 0);
            termios.c_lflag & libc::ECHO != 0
        }
    }

    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.collected.lock().unwrap()).into_owned()
    }

    /// The output once it contains `text`, or as it is after 10 s: the
    /// collecting thread may still be reading what exited children wrote.
    pub fn output_with(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let output = self.output();
            if output.contains(text) || std::time::Instant::now() > deadline {
                return output;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

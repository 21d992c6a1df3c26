//! Local processes attacking the two loopback HTTP servers of the binary —
//! `serve` and the callback listener of a waiting `login` — must neither kill
//! nor stall them: connections reset right after their request, a header
//! that never ends, thousands of connections that never finish their
//! request head, request bodies announced but never sent, and requests
//! pipelined without end on a connection that never reads the answers.
//!
//! Every test checks that the process is still running, that no thread of it
//! panicked (under `cargo test` a panic kills one thread, not the process, so
//! stderr is where it shows), and that a legitimate request is still answered.
//! Counts and survival are asserted, never speed.

#![cfg(target_os = "linux")] // /proc/PID/status, and the pty helpers of login

mod common;
#[path = "common/interactive.rs"]
mod interactive;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::*;
use interactive::*;

/// Generous: only a dead or wedged server takes this long to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);
/// Most threads a server may have while attacked.
const MAX_THREADS: u64 = 64;
/// Most memory (peak resident set) a server may reach while attacked.
const MAX_RSS_KIB: u64 = 32 * 1024;

/// A server process of the binary, killed when dropped.
struct Target {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
    kind: Kind,
}

enum Kind {
    /// `serve`, with the key to ask for the token.
    Serve { key: String },
    /// `login` waiting for its callback, with the login's `state`.
    Login { state: String },
}

impl Target {
    /// `serve` on a free port, with a valid token stored.
    fn serve(t: &TestEnv) -> Target {
        t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
        let out = t.run(&["serve", "--show-key"]);
        assert_exit(&out, 0);
        let key = stdout(&out).trim().to_string();
        t.forbid(&key);
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut cmd = t.cmd(&["serve", "--port", &port.to_string()]);
            let (child, stderr, lines) = spawn(&mut cmd);
            let target = Target {
                child,
                port,
                stderr,
                kind: Kind::Serve { key: key.clone() },
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                if line.contains(&format!(" at http://127.0.0.1:{port}/")) {
                    return target;
                }
            }
            // Something else took the port meanwhile: try another.
            assert!(
                target.log().contains("cannot listen"),
                "serve did not start:\n{}",
                target.log_excerpt()
            );
        }
        panic!("no free port for serve after 10 tries");
    }

    /// `login` whose callback server waits on a free port (the browser is a
    /// script that records the URL it is given).
    fn login(t: &TestEnv) -> Target {
        let browser = RecordingBrowser::new(t.home());
        let port = free_port();
        let mut cmd = t.cmd(&["login", "--timeout", "300"]);
        cmd.env("BROWSER", browser.command())
            .env("LIGHTFI_REDIRECT_URI", format!("http://localhost:{port}"));
        let (child, stderr, _) = spawn(&mut cmd);
        let state = param(&browser.wait_for_url(Duration::from_secs(30)), "state").unwrap();
        Target {
            child,
            port,
            stderr,
            kind: Kind::Login { state },
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The start and end of stderr, for failure messages (a broken server
    /// may print a panic per connection).
    fn log_excerpt(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        if lines.len() <= 30 {
            return log;
        }
        format!(
            "{}\n[… {} lines …]\n{}",
            lines[..10].join("\n"),
            lines.len() - 20,
            lines[lines.len() - 10..].join("\n")
        )
    }

    /// A value in KiB or a count from /proc/PID/status (VmRSS, VmHWM, Threads).
    fn status(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} for the server (is it running?)\n{}", self.log_excerpt()))
    }

    /// A request of a legitimate client, and the status it expects.
    fn legit_request(&self) -> (String, u16) {
        match &self.kind {
            Kind::Serve { key } => (
                format!(
                    "GET /token HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Lightfi-Key: {key}\r\nConnection: close\r\n\r\n",
                    self.port
                ),
                200,
            ),
            // Answered without ending the login.
            Kind::Login { .. } => (
                format!(
                    "GET /favicon.ico HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
                    self.port
                ),
                404,
            ),
        }
    }

    /// Alive, no thread panicked, and a legitimate request is answered.
    #[track_caller]
    fn assert_serving(&mut self, after: &str) {
        let (request, expected) = self.legit_request();
        let answer = ask(self.addr(), request.as_bytes(), ANSWER_WITHIN);
        self.assert_alive(after);
        let status = answer.unwrap_or_else(|e| panic!("no answer after {after}: {e}\n{}", self.log_excerpt()));
        assert_eq!(status, expected, "after {after}:\n{}", self.log_excerpt());
    }

    #[track_caller]
    fn assert_alive(&mut self, after: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the server died after {after} ({status}):\n{}", self.log_excerpt());
        }
        assert!(
            !self.log().contains("panicked"),
            "a server thread panicked after {after}:\n{}",
            self.log_excerpt()
        );
    }

    /// For a login: the real callback still ends it well.
    fn finish(mut self, t: &TestEnv) {
        let Kind::Login { state } = &self.kind else { return };
        let request = format!(
            "GET /?code=the-code&state={state} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        let status = ask(self.addr(), request.as_bytes(), ANSWER_WITHIN).expect("the callback is answered");
        assert_eq!(status, 200, "{}", self.log_excerpt());
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the login did not end:\n{}",
                self.log_excerpt()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(code, Some(0), "{}", self.log_excerpt());
        assert!(!self.log().contains("panicked"), "{}", self.log_excerpt());
        t.assert_no_leak(self.log().as_bytes());
        assert_eq!(t.server.token_requests().len(), 1);
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `cmd` with stderr collected; also hand each stderr line to the receiver.
fn spawn(cmd: &mut std::process::Command) -> (Child, Arc<Mutex<String>>, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lightfi-token");
    let stderr = Arc::new(Mutex::new(String::new()));
    let (pipe, log) = (child.stderr.take().unwrap(), stderr.clone());
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            log.lock().unwrap().push_str(&format!("{line}\n"));
            let _ = send.send(line);
        }
    });
    (child, stderr, lines)
}

/// Send `raw` and read the answer's status, waiting at most `within` in all.
fn ask(addr: SocketAddr, raw: &[u8], within: Duration) -> std::io::Result<u16> {
    let deadline = Instant::now() + within;
    let mut stream = TcpStream::connect_timeout(&addr, within)?;
    stream.write_all(raw)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {within:?}"),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {within:?}"),
                ));
            }
            Err(e) => return Err(e),
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:?}")))
}

/// Connect with SO_LINGER {on, 0}: closing then resets the connection.
fn send_and_reset(addr: SocketAddr, raw: &[u8]) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_LINGER");
    stream.write_all(raw)?;
    Ok(()) // dropped: RST
}

/// Allow this process as many open files as the hard limit (up to `want`).
fn raise_fd_limit(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let target = want.min(limit.rlim_max);
        if limit.rlim_cur < target {
            limit.rlim_cur = target;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

// --- the attacks, each on both servers ---

/// A request, then a reset: the server must drop the connection, not
/// unwrap a failed `peer_addr()` (with `panic = "abort"` that ends the process).
fn reset_connections(t: &TestEnv, mut target: Target) {
    let request = b"GET /token HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut reset = 0;
    for _ in 0..400 {
        if send_and_reset(target.addr(), request).is_ok() {
            reset += 1;
        }
    }
    assert!(
        reset >= 300,
        "only {reset} connections could be made and reset\n{}",
        target.log_excerpt()
    );
    std::thread::sleep(Duration::from_millis(300));
    target.assert_serving(&format!("{reset} reset connections"));
    target.finish(t);
}

/// 50 MiB of one header line: the server must close the connection at its
/// head limit instead of buffering it all.
fn huge_header(t: &TestEnv, mut target: Target) {
    let before = target.status("VmRSS");
    let mut stream = TcpStream::connect(target.addr()).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    stream
        .write_all(b"GET /token HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
        .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let total = 50 * 1024 * 1024;
    let mut sent = 0;
    let mut peak = 0;
    while sent < total {
        match stream.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break, // closed by the server
        }
        if sent % (1024 * 1024) < chunk.len() {
            peak = peak.max(target.status("VmRSS"));
        }
    }
    peak = peak.max(target.status("VmRSS"));
    let hwm = target.status("VmHWM");
    eprintln!("huge header: sent {sent} bytes; VmRSS {before} KiB before, {peak} KiB peak; VmHWM {hwm} KiB");
    assert!(
        sent < total,
        "the server read all {total} bytes of one header instead of closing the connection"
    );
    assert!(
        peak < MAX_RSS_KIB && hwm < MAX_RSS_KIB,
        "the server grew to {peak} KiB resident (peak {hwm} KiB) on one long header\n{}",
        target.log_excerpt()
    );
    drop(stream);
    target.assert_serving("a 50 MiB header");
    target.finish(t);
}

/// 2,000 connections that each send part of a head and then nothing: a
/// legitimate request must still be answered, with few threads.
fn slowloris(t: &TestEnv, mut target: Target) {
    let want = 2000;
    let limit = raise_fd_limit(want as u64 + 1000);
    let count = want.min(limit.saturating_sub(200) as usize);
    assert!(
        count >= 500,
        "the fd limit ({limit}) leaves too few sockets for the attack"
    );
    let partial = format!("GET /token HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Slow: ", target.port);
    // On both of its loopback addresses (it has a server on each) when it
    // listens on ::1 too.
    let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, target.port));
    let mut addrs = vec![target.addr()];
    if TcpStream::connect_timeout(&v6, Duration::from_secs(5)).is_ok() {
        addrs.push(v6);
    }
    let mut sockets = Vec::with_capacity(count);
    let mut most_threads = 0;
    for i in 0..count {
        let addr = addrs[i % addrs.len()];
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(15))
            && s.write_all(partial.as_bytes()).is_ok()
        {
            sockets.push(s);
        }
        if i % 50 == 0 {
            target.assert_alive(&format!("{i} slow connections"));
            most_threads = most_threads.max(target.status("Threads"));
        }
    }
    most_threads = most_threads.max(target.status("Threads"));
    assert!(
        sockets.len() >= count / 2,
        "only {} of {count} slow connections were made",
        sockets.len()
    );
    target.assert_serving(&format!("{} slow connections", sockets.len()));
    most_threads = most_threads.max(target.status("Threads"));
    eprintln!(
        "slowloris: {} connections held open on {} addresses; at most {most_threads} server threads",
        sockets.len(),
        addrs.len()
    );
    assert!(
        most_threads <= MAX_THREADS,
        "{most_threads} server threads under {} slow connections",
        sockets.len()
    );
    drop(sockets);
    target.finish(t);
}

/// Request bodies announced and never sent: 16 of 100 kB and 40 of 1 kB
/// held open (the thread that answered such a request used to wait for the
/// body for ever; a short body is read with the head), then one of 10^15
/// bytes (the server once allocated that much to skip it, and aborted).
fn unsent_bodies(t: &TestEnv, mut target: Target) {
    let port = target.port;
    let head =
        |length: u64| format!("POST /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {length}\r\n\r\n");
    let held: Vec<TcpStream> = [100_000; 16]
        .into_iter()
        .chain([1000; 40])
        .map(|length| {
            let mut s = TcpStream::connect(target.addr()).unwrap();
            s.write_all(head(length).as_bytes()).unwrap();
            // one at a time, so that each is answered before the next comes
            std::thread::sleep(Duration::from_millis(20));
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    target.assert_serving(&format!("{} requests whose bodies never come", held.len()));

    let mut huge = TcpStream::connect(target.addr()).unwrap();
    huge.write_all(head(1_000_000_000_000_000).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    target.assert_serving("a request announcing a body of 10^15 bytes");
    drop((huge, held));
    target.finish(t);
}

#[test]
fn serve_survives_reset_connections() {
    let t = TestEnv::new();
    reset_connections(&t, Target::serve(&t));
}

#[test]
fn login_callback_survives_reset_connections() {
    let t = TestEnv::new();
    reset_connections(&t, Target::login(&t));
}

#[test]
fn serve_closes_a_huge_header_with_little_memory() {
    let t = TestEnv::new();
    huge_header(&t, Target::serve(&t));
}

#[test]
fn login_callback_closes_a_huge_header_with_little_memory() {
    let t = TestEnv::new();
    huge_header(&t, Target::login(&t));
}

#[test]
fn serve_answers_under_slowloris_with_few_threads() {
    let t = TestEnv::new();
    slowloris(&t, Target::serve(&t));
}

#[test]
fn login_callback_answers_under_slowloris_with_few_threads() {
    let t = TestEnv::new();
    slowloris(&t, Target::login(&t));
}

#[test]
fn serve_survives_request_bodies_that_never_come() {
    let t = TestEnv::new();
    unsent_bodies(&t, Target::serve(&t));
}

#[test]
fn login_callback_survives_request_bodies_that_never_come() {
    let t = TestEnv::new();
    unsent_bodies(&t, Target::login(&t));
}

/// How long `unread_pipeline` floods, and how long a probe may wait.
const FLOOD_FOR: Duration = Duration::from_secs(6);
const PROBE_WITHIN: Duration = Duration::from_secs(5);
/// Most memory (peak resident set) a server may reach under the flood.
const MAX_FLOOD_RSS_KIB: u64 = 64 * 1024;
/// Where the flood stops early, so that a server that buffers it all does
/// not take the machine's memory with it.
const FLOOD_ABORT_RSS_KIB: u64 = 512 * 1024;

/// One connection that pipelines `GET /token` back to back and never reads
/// an answer, reconnecting whenever the server closes it, for `FLOOD_FOR`
/// or until `stop`. Returns the bytes sent.
fn pipeline_flood(addr: SocketAddr, stop: Arc<AtomicBool>) -> u64 {
    let request = format!("GET /token HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", addr.port());
    let batch = request.repeat(512);
    let deadline = Instant::now() + FLOOD_FOR;
    let mut sent = 0u64;
    'connections: while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            continue;
        };
        stream.set_write_timeout(Some(Duration::from_millis(100))).unwrap();
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            match stream.write(batch.as_bytes()) {
                Ok(n) => sent += n as u64,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => continue 'connections,
            }
        }
    }
    sent
}

/// A legitimate request with `Connection: close` in its own thread; its
/// outcome (answered as expected within `PROBE_WITHIN`) comes on `results`.
fn probe(target: &Target, results: &mpsc::Sender<bool>) {
    let (request, expected) = target.legit_request();
    let (addr, results) = (target.addr(), results.clone());
    std::thread::spawn(move || {
        let answered = ask(addr, request.as_bytes(), PROBE_WITHIN).is_ok_and(|status| status == expected);
        let _ = results.send(answered);
    });
}

/// HTTP/1.1 requests pipelined on one connection whose answers are never
/// read: the server must hold one of them at a time (not parse ahead and
/// queue answers by the million), give up on a client that does not take
/// its answer, and keep answering others during and after the flood.
fn unread_pipeline(t: &TestEnv, mut target: Target) {
    let stop = Arc::new(AtomicBool::new(false));
    let flood = std::thread::spawn({
        let (addr, stop) = (target.addr(), stop.clone());
        move || pipeline_flood(addr, stop)
    });
    let (during_tx, during) = mpsc::channel();
    let mut peak = 0;
    let started = Instant::now();
    let mut probes_during = 0;
    while !flood.is_finished() {
        if started.elapsed() >= Duration::from_secs(probes_during) {
            probe(&target, &during_tx);
            probes_during += 1;
        }
        target.assert_alive("a pipelined flood");
        peak = peak.max(target.status("VmRSS"));
        if peak > FLOOD_ABORT_RSS_KIB {
            stop.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = flood.join().unwrap();
    let (after_tx, after) = mpsc::channel();
    for _ in 0..4 {
        probe(&target, &after_tx);
        std::thread::sleep(Duration::from_secs(1));
    }
    drop((during_tx, after_tx));
    let answered_during = during.iter().filter(|&ok| ok).count();
    let answered_after = after.iter().filter(|&ok| ok).count();
    let hwm = target.status("VmHWM");
    eprintln!(
        "pipelined flood: {sent} bytes sent; VmRSS peak {peak} KiB, VmHWM {hwm} KiB; \
         probes answered: {answered_during} of {probes_during} during, {answered_after} of 4 after"
    );
    target.assert_alive("a pipelined flood");
    assert!(
        peak <= MAX_FLOOD_RSS_KIB && hwm <= MAX_FLOOD_RSS_KIB,
        "the server grew to {peak} KiB resident (peak {hwm} KiB) under a pipelined flood\n{}",
        target.log_excerpt()
    );
    assert!(
        answered_during * 2 >= probes_during as usize,
        "only {answered_during} of {probes_during} requests were answered during the flood\n{}",
        target.log_excerpt()
    );
    assert!(
        answered_after >= 3,
        "only {answered_after} of 4 requests were answered after the flood\n{}",
        target.log_excerpt()
    );
    target.finish(t);
}

#[test]
fn serve_survives_a_pipelined_flood_never_read() {
    let t = TestEnv::new();
    unread_pipeline(&t, Target::serve(&t));
}

#[test]
fn login_callback_survives_a_pipelined_flood_never_read() {
    let t = TestEnv::new();
    unread_pipeline(&t, Target::login(&t));
}

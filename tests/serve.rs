//! `lightfi-token serve`: the real server on a loopback port, driven over raw
//! TCP so every header (Host, Origin, garbage) is exactly what the test says.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// Generous: only a dead or wedged server takes this long.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `lightfi-token serve`, stopped with SIGTERM when dropped.
struct Serve {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Serve {
    /// On a free port: bind one, release it and pass it with `--port`,
    /// trying again if something else took it meanwhile.
    fn start(t: &TestEnv) -> Serve {
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            if let Some(serve) = Serve::try_start(t, &["serve", "--port", &port.to_string()]) {
                assert_eq!(serve.port, port);
                return serve;
            }
        }
        panic!("no free port for serve after 10 tries");
    }

    /// Start with `args`; None when it could not listen (the port was taken).
    fn try_start(t: &TestEnv, args: &[&str]) -> Option<Serve> {
        let mut child = t
            .cmd(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run lightfi-token serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ports, port) = mpsc::channel();
        let (pipe, log) = (child.stderr.take().unwrap(), stderr.clone());
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split(" at http://127.0.0.1:").nth(1) {
                    let _ = ports.send(rest.split('/').next().unwrap().parse::<u16>().unwrap());
                }
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        match port.recv_timeout(PATIENCE) {
            Ok(port) => Some(Serve {
                child,
                port,
                stderr,
                reader: Some(reader),
            }),
            Err(_) => {
                let status = child.wait().unwrap();
                let _ = reader.join();
                let err = stderr.lock().unwrap().clone();
                assert!(err.contains("cannot listen"), "serve did not start ({status}):\n{err}");
                None
            }
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn host(&self) -> String {
        self.addr()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Send SIGTERM (or `signal`) and wait for the exit.
    fn stop(&mut self, signal: libc::c_int) -> ExitStatus {
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The rest of stderr, up to the pipe's end.
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            if start.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("serve did not stop within {PATIENCE:?}:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop(libc::SIGTERM);
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Send `raw` to `addr` and read the answer until the server closes.
fn exchange(addr: &str, raw: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(raw).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let answer = Answer {
        status,
        headers,
        body: body.to_string(),
    };
    assert_hygiene(&answer);
    answer
}

/// What every answer must carry, or not.
#[track_caller]
fn assert_hygiene(answer: &Answer) {
    if answer.status == 400 {
        return; // tiny_http's own answer to an unparsable request: empty, nothing to cache
    }
    assert_eq!(answer.header("Cache-Control"), Some("no-store"), "{answer:?}");
    assert_eq!(answer.header("Content-Type"), Some("application/json"), "{answer:?}");
    let cors: Vec<_> = answer
        .headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "no CORS headers ever: {cors:?}");
}

fn request(serve: &Serve, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut raw = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("Connection: close\r\n\r\n");
    exchange(&serve.addr(), raw.as_bytes())
}

fn get_token(serve: &Serve, key: &str) -> Answer {
    request(
        serve,
        "GET",
        "/token",
        &[("Host", &serve.host()), ("X-Lightfi-Key", key)],
    )
}

fn show_key(t: &TestEnv) -> String {
    let out = t.run(&["serve", "--show-key"]);
    assert_exit(&out, 0);
    let key = stdout(&out);
    assert!(key.ends_with('\n') && key.lines().count() == 1, "{key:?}");
    let key = key.trim_end().to_string();
    t.forbid(&key);
    key
}

#[test]
fn show_key_prints_the_key_the_server_accepts_kept_0600() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let key = show_key(&t);
    assert_eq!(key.len(), 43, "32 random bytes, base64url: {key}");
    assert_eq!(show_key(&t), key, "created once, then kept");
    let file = t.home().join("tokens").join("serve.key");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    let serve = Serve::start(&t);
    let answer = get_token(&serve, &key);
    assert_eq!(answer.status, 200, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["access_token"], "seeded-tok");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_at"], t.store()["access"]["expires_at"]);
    assert!(answer.body.ends_with("}\n") && answer.body.lines().count() == 1);

    // stderr (often a log others can read) names the key's file, never the
    // key, and never a token.
    let err = serve.stderr();
    assert_eq!(err.matches(&key).count(), 0, "{err}");
    assert!(
        err.contains("X-Lightfi-Key") && err.contains(&file.display().to_string()),
        "{err}"
    );
    assert!(err.contains("serve --show-key"), "{err}");
    t.assert_no_leak(err.as_bytes());
    assert_eq!(t.server.requests().len(), 0);
}

#[test]
fn missing_or_wrong_key_is_401() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let key = show_key(&t);
    let serve = Serve::start(&t);
    let missing = request(&serve, "GET", "/token", &[("Host", &serve.host())]);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["error"], "invalid_key");
    let mut wrong = key.clone();
    wrong.replace_range(42.., if key.ends_with('A') { "B" } else { "A" });
    for bad in [wrong.as_str(), "", &key[..42], &format!("{key}x")] {
        let answer = get_token(&serve, bad);
        assert_eq!(answer.status, 401, "{bad:?}");
        assert!(!answer.body.contains("seeded-tok"));
    }
    assert_eq!(get_token(&serve, &key).status, 200);
}

#[test]
fn foreign_host_and_any_origin_are_403() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let key = show_key(&t);
    let serve = Serve::start(&t);
    let port = serve.port;
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_string(),
        format!("localhost.evil.example:{port}"),
    ] {
        let answer = request(&serve, "GET", "/token", &[("Host", &host), ("X-Lightfi-Key", &key)]);
        assert_eq!(answer.status, 403, "{host}");
        assert_eq!(answer.json()["error"], "forbidden_host");
    }
    for origin in ["http://evil.example", "null", &format!("http://127.0.0.1:{port}")] {
        let answer = request(
            &serve,
            "GET",
            "/token",
            &[("Host", &serve.host()), ("Origin", origin), ("X-Lightfi-Key", &key)],
        );
        assert_eq!(answer.status, 403, "{origin}");
        assert_eq!(answer.json()["error"], "forbidden_origin");
        assert!(!answer.body.contains("seeded-tok"));
    }
    // A CORS preflight gets no CORS answer.
    let preflight = request(
        &serve,
        "OPTIONS",
        "/token",
        &[
            ("Host", &serve.host()),
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Headers", "x-lightfi-key"),
        ],
    );
    assert_eq!(preflight.status, 403);
    // Every loopback name of this server is fine.
    for host in [format!("localhost:{port}"), format!("[::1]:{port}")] {
        let answer = request(&serve, "GET", "/token", &[("Host", &host), ("X-Lightfi-Key", &key)]);
        assert_eq!(answer.status, 200, "{host}");
    }
}

#[test]
fn other_paths_are_404_and_other_methods_405() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let key = show_key(&t);
    let serve = Serve::start(&t);
    let host = serve.host();
    let with_key = [("Host", host.as_str()), ("X-Lightfi-Key", key.as_str())];
    for path in ["/", "/token/", "/tokens", "/favicon.ico"] {
        assert_eq!(request(&serve, "GET", path, &with_key).status, 404, "{path}");
    }
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "HEAD"] {
        let answer = request(&serve, method, "/token", &with_key);
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.header("Allow"), Some("GET"), "{method}");
    }
    assert_eq!(request(&serve, "GET", "/token?fresh=1", &with_key).status, 200);
}

#[test]
fn garbage_never_stops_the_server() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let key = show_key(&t);
    let serve = Serve::start(&t);
    let huge = format!(
        "GET /token HTTP/1.1\r\nHost: {}\r\nX-Junk: {}\r\n\r\n",
        serve.host(),
        "a".repeat(1 << 20)
    );
    let attacks: Vec<Vec<u8>> = vec![
        b"\x00\xff\xfe garbage \x01\x02\r\n\r\n".to_vec(),
        b"NONSENSE\r\n\r\n".to_vec(),
        b"GET /token HTTP/9.9\r\n\r\n".to_vec(),
        b"GET /token HTTP/1.1\r\nNo colon here\r\n\r\n".to_vec(),
        "GET /token HTTP/1.1\r\nHost: \u{e9}\u{e9}\r\n\r\n".as_bytes().to_vec(),
        huge.into_bytes(),
        b"GET /tok".to_vec(),
    ];
    for attack in attacks {
        let mut stream = TcpStream::connect(serve.addr()).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let _ = stream.write_all(&attack);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
        assert_eq!(
            get_token(&serve, &key).status,
            200,
            "after {:?}",
            String::from_utf8_lossy(&attack[..20.min(attack.len())])
        );
    }
    // A client that connects and says nothing does not block others.
    let _idle = TcpStream::connect(serve.addr()).unwrap();
    assert_eq!(get_token(&serve, &key).status, 200);
}

#[test]
fn hundred_parallel_requests_on_an_expired_token_refresh_once() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("expired-tok", 4000, 3600)));
    // A slow answer, so many requests find the token expired meanwhile.
    t.server
        .fallback(Reply::Delay(Duration::from_millis(500), Box::new(Reply::fresh())));
    let key = show_key(&t);
    let serve = Serve::start(&t);
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100).map(|_| s.spawn(|| get_token(&serve, &key))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(t.server.token_requests().len(), 1, "one refresh for 100 requests");
    let expires_at = t.store()["access"]["expires_at"].clone();
    for answer in &answers {
        assert_eq!(answer.status, 200, "{answer:?}");
        let body = answer.json();
        assert_eq!(body["access_token"], jwt_like(1));
        assert_eq!(body["expires_at"], expires_at);
    }
    // Identical but for `expires_in`, which counts down while they are answered.
    let without_countdown = |a: &Answer| a.body.split(",\"expires_in\"").next().unwrap().to_string();
    let first = without_countdown(&answers[0]);
    assert!(answers.iter().all(|a| without_countdown(a) == first));
    let log = serve.stderr();
    assert_eq!(log.matches(&key).count(), 0, "the key is never logged");
    t.assert_no_leak(log.as_bytes());
}

#[test]
fn not_logged_in_is_503_with_a_hint() {
    let t = TestEnv::new();
    let key = show_key(&t);
    let serve = Serve::start(&t);
    let answer = get_token(&serve, &key);
    assert_eq!(answer.status, 503);
    let body = answer.json();
    assert_eq!(body["error"], "login_required");
    assert!(body["hint"].as_str().unwrap().contains("lightfi-token login"), "{body}");
    assert!(serve.stderr().contains("not logged in"), "{}", serve.stderr());
    // A login elsewhere is picked up without a restart.
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    assert_eq!(get_token(&serve, &key).json()["access_token"], "seeded-tok");
}

#[test]
fn a_login_in_the_keyring_is_a_login() {
    let t = TestEnv::new();
    let key = show_key(&t);
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    // As a login kept in the keyring leaves the file: no refresh token, only where it is.
    let mut store = t.store();
    store.as_object_mut().unwrap().remove("refresh_token");
    store["refresh_token_in"] = "keyring".into();
    std::fs::write(t.store_path(), store.to_string()).unwrap();
    let mut serve = Serve::start(&t);
    assert_eq!(get_token(&serve, &key).json()["access_token"], "seeded-tok");
    serve.stop(libc::SIGTERM);
    assert!(!serve.stderr().contains("not logged in"), "{}", serve.stderr());
}

#[test]
fn failing_token_endpoint_is_502() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    t.server.fallback(Reply::status(500));
    let key = show_key(&t);
    let serve = Serve::start(&t);
    let answer = get_token(&serve, &key);
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.json()["error"], "authorization_server_unavailable");
    assert_eq!(t.store()["refresh_token"], "refresh-0");
}

#[test]
fn sigterm_and_ctrl_c_stop_cleanly_with_exit_0() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let t = TestEnv::new();
        t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
        let key = show_key(&t);
        let mut serve = Serve::start(&t);
        assert_eq!(get_token(&serve, &key).status, 200);
        let status = serve.stop(signal);
        assert_eq!(
            status.code(),
            Some(0),
            "signal {signal}: {status:?}\n{}",
            serve.stderr()
        );
        assert!(
            serve.stderr().ends_with("lightfi-token: stopped\n"),
            "{}",
            serve.stderr()
        );
    }
}

#[test]
fn port_0_picks_a_free_port_on_both_loopbacks() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let key = show_key(&t);
    let serve = Serve::try_start(&t, &["serve", "--port", "0"]).expect("port 0 is always free");
    assert_ne!(serve.port, 0);
    assert_eq!(get_token(&serve, &key).status, 200);
    let err = serve.stderr();
    if err.contains(&format!("http://[::1]:{}/token", serve.port)) {
        let raw = format!(
            "GET /token HTTP/1.1\r\nHost: [::1]:{}\r\nX-Lightfi-Key: {key}\r\nConnection: close\r\n\r\n",
            serve.port
        );
        assert_eq!(exchange(&format!("[::1]:{}", serve.port), raw.as_bytes()).status, 200);
    } else {
        assert!(err.contains("serving on 127.0.0.1 only"), "{err}");
    }
    // Never on a non-loopback address.
    let listening = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port_hex = format!(":{:04X} ", serve.port);
    for line in listening.lines().filter(|l| l.contains(&port_hex)) {
        let local = line.split_whitespace().nth(1).unwrap();
        if local.ends_with(port_hex.trim()) {
            assert!(local.starts_with("0100007F"), "bound to {local}");
        }
    }
}

#[test]
fn key_file_is_kept_private_and_a_malformed_one_refused() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestEnv::new();
    let file = t.home().join("tokens").join("serve.key");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let own = "my-own-key-shared-with-the-team-0123456789";
    std::fs::write(&file, format!("{own}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(show_key(&t), own, "a key of one's own is kept");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    std::fs::write(&file, "short\n").unwrap();
    let out = t.run(&["serve", "--show-key"]);
    assert_exit(&out, 4);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("serve.key is malformed"), "{}", stderr(&out));
}

#[test]
fn refuses_to_start_when_another_program_has_the_port_on_ipv6() {
    let Ok(other) = TcpListener::bind("[::1]:0") else {
        panic!("this test needs IPv6 loopback (::1)");
    };
    let port = other.local_addr().unwrap().port();
    let t = TestEnv::new();
    let out = t.run(&["serve", "--port", &port.to_string()]);
    assert_exit(&out, 4);
    assert!(stderr(&out).contains(&format!("[::1]:{port}")), "{}", stderr(&out));
}

#[test]
fn a_request_never_waits_long_behind_another_process() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 4000, 3600)));
    let key = show_key(&t);
    let serve = Serve::start(&t);
    // Another lightfi-token holds the profile (a browser login, say).
    let held = t.hold_lock();
    // The lock is held until after the answer: "busy" is the bound kept.
    let answer = get_token(&serve, &key);
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.json()["error"], "busy");
    drop(held);
    assert_eq!(get_token(&serve, &key).status, 200);
}

#[test]
fn rotate_key_locks_the_old_key_out_of_a_running_server_at_once() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let old = show_key(&t);
    let serve = Serve::start(&t);
    assert_eq!(get_token(&serve, &old).status, 200);

    let out = t.run(&["serve", "--rotate-key"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "", "the new key is printed only by --show-key");
    let err = stderr(&out);
    assert!(err.contains("serve.key") && err.contains("--show-key"), "{err}");
    let new = show_key(&t);
    assert_ne!(new, old);
    assert_eq!(new.len(), 43);
    let file = t.home().join("tokens").join("serve.key");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    t.assert_no_leak(err.as_bytes());

    // The running server: the old key is refused from the next request on.
    let refused = get_token(&serve, &old);
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.json()["error"], "invalid_key");
    assert_eq!(get_token(&serve, &new).status, 200);
    let log = serve.stderr();
    assert!(log.contains("changed"), "the log says the key changed:\n{log}");
    assert!(!log.contains(&old) && !log.contains(&new), "{log}");

    // A key file that goes missing refuses every key until a new one is written.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(get_token(&serve, &new).status, 401);
    assert_exit(&t.run(&["serve", "--rotate-key"]), 0);
    assert_eq!(get_token(&serve, &show_key(&t)).status, 200);
    assert!(
        !t.run(&["serve", "--rotate-key", "--show-key"]).status.success(),
        "one or the other"
    );
}

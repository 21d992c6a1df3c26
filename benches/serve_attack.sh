#!/usr/bin/env bash
# Benchmark of `lightfi-token serve` under a slowloris attack: 2,000
# connections from one local process, each sending part of a request head
# and then nothing, spread over 127.0.0.1 and ::1 (serve has a server on
# each). Measures how long legitimate `GET /token` requests take
# meanwhile, and the server's peak resident memory and thread count.
# Targets: answer <= 1 s, peak RSS <= 32 MiB, peak threads <= 64.
# Takes about half a minute after the release build; needs python3.
#
#   bash benches/serve_attack.sh [CONNECTIONS]
#   BIN=target/x86_64-unknown-linux-musl/release/lightfi-token bash benches/serve_attack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "python3 is missing" >&2; exit 1; }
connections=${1:-2000}

# BIN=… benchmarks another build (the musl one: docs/BENCHMARKS.md).
if [ -n "${BIN:-}" ]; then
  bin=$(realpath "$BIN")
else
  cargo build --release --locked --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/lightfi-token"
fi

home=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$home"
}
trap cleanup EXIT
mkdir -m 700 "$home/tokens"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
cat > "$home/tokens/default.json" <<JSON
{
  "client_id": "bench-client",
  "oauth_url": "http://127.0.0.1:9/oauth2",
  "refresh_token": "bench-refresh",
  "access": {
    "token": "bench-access-token",
    "token_type": "Bearer",
    "obtained_at": "$now",
    "expires_at": "$later"
  }
}
JSON
chmod 600 "$home/tokens/default.json"

# Only the temporary home and a closed OAuth port: nothing of the caller's.
# It execs: call it in a subshell.
run() {
  exec env -i PATH="$PATH" HOME="$home" LIGHTFI_TOKEN_HOME="$home" \
    LIGHTFI_CLIENT_ID=bench-client LIGHTFI_OAUTH_URL=http://127.0.0.1:9/oauth2 "$bin" "$@"
}
key=$(run serve --show-key)
# Port 0: the system picks a free one, which serve names on stderr.
(run serve --port 0 2>"$home/serve.log" >/dev/null) &
pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's|.* at http://127\.0\.0\.1:\([0-9]*\)/token.*|\1|p' "$home/serve.log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "serve did not start:" >&2; cat "$home/serve.log" >&2; exit 1; }

KEY="$key" python3 - "$pid" "$port" "$connections" <<'PY'
import os, resource, socket, statistics, sys, threading, time

pid, port, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
key = os.environ["KEY"]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = min(hard, count + 500) if hard != resource.RLIM_INFINITY else count + 500
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

def status(field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit(f"serve is gone (no {field})")

peak_threads = status("Threads")
idle_threads, idle_rss = peak_threads, status("VmRSS")
stop = threading.Event()
def sample():
    global peak_threads
    while not stop.is_set():
        try:
            peak_threads = max(peak_threads, status("Threads"))
        except (SystemExit, OSError):
            return
        time.sleep(0.005)
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()

request = (f"GET /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Lightfi-Key: {key}\r\n"
           "Connection: close\r\n\r\n").encode()
def legit():
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    took = time.monotonic() - start
    if not answer.startswith(b"HTTP/1.1 200 "):
        raise SystemExit(f"legitimate request not answered with 200: {answer[:60]!r}")
    return took

partial = f"GET /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode()
addrs = [("127.0.0.1", port)]
try:
    socket.create_connection(("::1", port), timeout=5).close()
    addrs.append(("::1", port))
except OSError:
    pass
held, failed, answers = [], 0, []
attack_start = time.monotonic()
for i in range(1, count + 1):
    try:
        s = socket.create_connection(addrs[i % len(addrs)], timeout=15)
        s.sendall(partial)
        held.append(s)
    except OSError:
        failed += 1
    if i % 500 == 0 and i < count:
        answers.append(legit())  # while the attack is still opening connections
opened_in = time.monotonic() - attack_start
for _ in range(10):
    answers.append(legit())      # with all of them held open
stop.set()
sampler.join()
alive = os.path.exists(f"/proc/{pid}")
peak_rss = status("VmHWM")
threads_now = status("Threads")

def row(what, value, target, ok):
    print(f"| {what:<44} | {value:>10} | {target:>9} | {'ok' if ok else 'MISSED':<6} |")
print(f"\nslowloris: {len(held)} connections held open by one process on "
      f"{' and '.join(a for a, _ in addrs)} ({failed} refused or timed out), opened in {opened_in:.1f} s; "
      f"serve idle before: {idle_threads} threads, {idle_rss / 1024:.1f} MiB RSS\n")
print(f"| {'measure':<44} | {'value':>10} | {'target':>9} | {'':<6} |")
print(f"|{'-' * 46}|{'-' * 12}|{'-' * 11}|{'-' * 8}|")
median, worst = statistics.median(answers), max(answers)
row(f"legitimate GET /token, median of {len(answers)}", f"{median * 1000:.1f} ms", "<= 1 s", median <= 1)
row(f"legitimate GET /token, slowest of {len(answers)}", f"{worst * 1000:.1f} ms", "<= 1 s", worst <= 1)
row("peak RSS of serve (VmHWM)", f"{peak_rss / 1024:.1f} MiB", "<= 32 MiB", peak_rss <= 32 * 1024)
row("peak threads of serve (sampled every 5 ms)", str(peak_threads), "<= 64", peak_threads <= 64)
row("serve still running", "yes" if alive else "no", "yes", alive)
print(f"\nthreads after the attack, connections still open: {threads_now}")
for s in held:
    s.close()
PY
if grep -q panicked "$home/serve.log"; then
  echo "serve printed a panic:" >&2
  grep -m 5 panicked "$home/serve.log" >&2
  exit 1
fi

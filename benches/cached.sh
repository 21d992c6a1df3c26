#!/usr/bin/env bash
# Benchmark of the cached path: `lightfi-token -r` on a valid cached token
# against `cat` of the same store file (the floor: one process, one read).
# Target: median within 1.3x of cat. Also reports peak RSS and binary size.
#
#   bash benches/cached.sh            # needs hyperfine (apt-get install -y hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install -y hyperfine" >&2; exit 1; }

cargo build --release --locked --quiet
bin="$PWD/target/release/lightfi-token"

home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
mkdir -m 700 "$home/tokens"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
# A Cognito-sized access token (about 1 KB), valid for an hour.
token="eyJraWQiOiJiZW5jaCJ9.$(head -c 900 /dev/zero | tr '\0' 'x').sig"
cat > "$home/tokens/default.json" <<JSON
{
  "client_id": "bench-client",
  "oauth_url": "http://127.0.0.1:9/oauth2",
  "refresh_token": "bench-refresh",
  "access": {
    "token": "$token",
    "token_type": "Bearer",
    "obtained_at": "$now",
    "expires_at": "$later"
  }
}
JSON
chmod 600 "$home/tokens/default.json"

export LIGHTFI_TOKEN_HOME="$home" LIGHTFI_CLIENT_ID=bench-client LIGHTFI_OAUTH_URL=http://127.0.0.1:9/oauth2
# The oauth URL points at a closed port: any network use would fail the run.
[ "$("$bin" -r)" = "$token" ] || { echo "the cached path did not print the cached token" >&2; exit 1; }

hyperfine -N --warmup 100 --runs 2000 --export-json "$home/h.json" \
  "$bin -r" "cat $home/tokens/default.json" >&2

python3 - "$home/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
ours, cat = r[0]["median"], r[1]["median"]
print(f"median lightfi-token -r: {ours*1e3:.3f} ms")
print(f"median cat:              {cat*1e3:.3f} ms")
print(f"ratio:                   {ours/cat:.2f}x (target <= 1.3x)")
PY
rss=$(/usr/bin/time -v "$bin" -r 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}')
echo "peak RSS:                ${rss} KiB"
echo "binary size (stripped):  $(stat -c %s "$bin") bytes"

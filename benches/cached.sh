#!/usr/bin/env bash
# Benchmark of the cached path: `lightfi-token -r` on a valid cached token
# against `cat` of the same store file (the floor: one process, one read).
# Target: median within 1.3x of cat. Also reports peak RSS and binary size.
# Takes about two minutes after the release build.
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
# The store is keyed by profile and identity: <profile>@<16 hex digits of
# SHA-256 over client id, OAuth URL and scope set, each NUL-ended>.json.
store="$home/tokens/default@$(printf 'bench-client\0http://127.0.0.1:9/oauth2\0aws.cognito.signin.user.admin\0' | sha256sum | cut -c1-16).json"
cat > "$store" <<JSON
{
  "version": 1,
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
chmod 600 "$store"

export LIGHTFI_TOKEN_HOME="$home" LIGHTFI_CLIENT_ID=bench-client LIGHTFI_OAUTH_URL=http://127.0.0.1:9/oauth2
# The oauth URL points at a closed port: any network use would fail the run.
[ "$("$bin" -r)" = "$token" ] || { echo "the cached path did not print the cached token" >&2; exit 1; }

# Nine rounds, each timing both commands back to back, so that a noisy
# moment on the machine weighs on both; the ratio reported is the median of
# the rounds' ratios of medians.
for round in $(seq 1 9); do
  hyperfine -N --warmup 100 --runs 1000 --export-json "$home/h$round.json" \
    "$bin -r" "cat $store" >/dev/null 2>&1
done

python3 - "$home" <<'PY'
import json, statistics, sys
rounds = [json.load(open(f"{sys.argv[1]}/h{i}.json"))["results"] for i in range(1, 10)]
ours = [r[0]["median"] for r in rounds]
cat = [r[1]["median"] for r in rounds]
ratios = sorted(o / c for o, c in zip(ours, cat))
print(f"median lightfi-token -r: {statistics.median(ours)*1e3:.3f} ms (9 rounds x 1000 runs)")
print(f"median cat:              {statistics.median(cat)*1e3:.3f} ms")
print(f"ratio:                   {statistics.median(ratios):.2f}x median of rounds "
      f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}; target <= 1.3x)")
PY
# Instructions are the repeatable measure on a noisy machine (valgrind, if present).
if command -v valgrind >/dev/null; then
  count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null | awk '/refs:/ {print $NF}'; }
  echo "instructions:            $(count "$bin" -r) lightfi-token -r, $(count cat "$store") cat"
fi
rss=$(/usr/bin/time -v "$bin" -r 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}')
echo "peak RSS:                ${rss} KiB"
echo "binary size (stripped):  $(stat -c %s "$bin") bytes"

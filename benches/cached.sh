#!/usr/bin/env bash
# Benchmark of the cached path: `lightfi-token -r` on a valid cached token,
# side by side with the floor — a static C program that opens the store,
# finds the token and prints it (benches/floor.c) — and `cat` of the same
# file. Goal: the shipped (musl) binary within 1.2x of the floor, 1.3x at most.
#
#   bash benches/cached.sh                    # the musl and the glibc release builds
#   bash benches/cached.sh NAME=BINARY …      # these binaries instead
#   PROFILE=dist bash benches/cached.sh       # another cargo profile
#
# Needs hyperfine and musl-gcc (apt-get install -y hyperfine musl-tools).
# Nine rounds of 1,000 runs each, every command in every round, so that a
# noisy moment on the machine weighs on all; the figures are the medians of
# the rounds. About two minutes after the builds.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine musl-gcc python3; do
  command -v $tool >/dev/null || { echo "$tool is missing: apt-get install -y hyperfine musl-tools python3" >&2; exit 1; }
done
profile=${PROFILE:-release}
target_dir=${CARGO_TARGET_DIR:-target}

home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
musl-gcc -static -O2 -o "$home/floor" benches/floor.c

if [ $# -eq 0 ]; then
  cargo build --profile "$profile" --locked --quiet --target x86_64-unknown-linux-musl
  cargo build --profile "$profile" --locked --quiet
  out=$profile; [ "$profile" = dev ] && out=debug
  set -- "musl=$target_dir/x86_64-unknown-linux-musl/$out/lightfi-token" "glibc=$target_dir/$out/lightfi-token"
fi

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
names=(floor cat)
commands=("$home/floor $store" "cat $store")
for pair in "$@"; do
  name=${pair%%=*} bin=$(realpath "${pair#*=}")
  # The oauth URL points at a closed port: any network use would fail the run.
  [ "$("$bin" -r)" = "$token" ] || { echo "$name: the cached path did not print the cached token" >&2; exit 1; }
  names+=("$name") commands+=("$bin -r")
  echo "$name: $("$bin" --version), $(stat -c %s "$bin") bytes"
done
[ "$("$home/floor" "$store")" = "$token" ] || { echo "the floor did not print the token" >&2; exit 1; }

for round in $(seq 1 9); do
  hyperfine -N --warmup 100 --runs 1000 --export-json "$home/h$round.json" "${commands[@]}" >/dev/null 2>&1
done

python3 - "$home" "${names[@]}" <<'PY'
import json, statistics, sys
home, names = sys.argv[1], sys.argv[2:]
rounds = [json.load(open(f"{home}/h{i}.json"))["results"] for i in range(1, 10)]
print(f"| command | median (9 rounds x 1000 runs) | ratio to the floor (median of rounds, range) |")
print(f"|---|---|---|")
for i, name in enumerate(names):
    times = [r[i]["median"] for r in rounds]
    ratios = sorted(r[i]["median"] / r[0]["median"] for r in rounds)
    print(f"| {name} | {statistics.median(times)*1e3:.3f} ms | {statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f}) |")
PY
# Instructions are the repeatable measure on a noisy machine (valgrind, if present).
if command -v valgrind >/dev/null; then
  count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null | awk '/refs:/ {print $NF}'; }
  echo "instructions: floor $(count "$home/floor" "$store"), cat $(count cat "$store")"
  for pair in "$@"; do echo "instructions: ${pair%%=*} $(count "$(realpath "${pair#*=}")" -r)"; done
fi
for pair in "$@"; do
  rss=$(/usr/bin/time -v "$(realpath "${pair#*=}")" -r 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}')
  echo "peak RSS: ${pair%%=*} ${rss} KiB"
done

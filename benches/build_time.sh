#!/usr/bin/env bash
# Build time from scratch (what `cargo install` costs) per profile, in a
# fresh target folder each, for the static Linux binary; plus binary sizes.
# Meaningful only on an otherwise idle machine: wall time swings with load,
# CPU time (user + sys) much less.
#
#   bash benches/build_time.sh [PROFILE …]      # default: release dist
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- release dist
for profile in "$@"; do
  dir=$(mktemp -d)
  /usr/bin/time -f "$profile: %e s wall, %U s user, %S s sys" \
    cargo build --quiet --locked --profile "$profile" --target x86_64-unknown-linux-musl --target-dir "$dir"
  echo "$profile: $(stat -c %s "$dir/x86_64-unknown-linux-musl/$profile/lightfi-token") bytes"
  rm -rf "$dir"
done

#!/usr/bin/env bash
# Is each micro-optimisation of the cached path worth keeping? Builds the
# musl release binary as it is and without each one — today the argv fast
# path in front of clap (`Cli::plain`); the C `main` was judged with it and
# deleted — from patched copies of the source, then times them side by side
# with benches/cached.sh. One is kept only if it buys at least 10 % of the
# cached path (docs/BENCHMARKS.md).
#
#   bash benches/micro.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# variant name, then a sed script for src/main.rs
variants=(
  "as-is" ""
  "no-fast-path" 's/Cli::plain(args.get(1..).unwrap_or_default())/None::<Cli>/'
)
bins=()
for ((i = 0; i < ${#variants[@]}; i += 2)); do
  name=${variants[i]} script=${variants[i + 1]}
  rm -rf "$work/src"
  git ls-files -z | grep -zv '^fuzz/\|^tests/' | xargs -0 cp --parents -t "$work" 2>/dev/null || true
  [ -z "$script" ] || sed -i "$script" "$work/src/main.rs"
  if [ -n "$script" ] && cmp -s "$work/src/main.rs" src/main.rs; then
    echo "$name: the patch no longer applies to src/main.rs" >&2; exit 1
  fi
  (cd "$work" && cargo build --release --locked --quiet --target x86_64-unknown-linux-musl --bin lightfi-token)
  cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/lightfi-token" "$work/$name"
  bins+=("$name=$work/$name")
done
bash benches/cached.sh "${bins[@]}"

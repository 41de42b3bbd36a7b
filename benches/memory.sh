#!/usr/bin/env bash
# Peak memory of `rprof report` against the size of the recording: it must
# follow the number of unique stacks and addresses, not the number of
# records. Generates recordings with examples/gen_recording.rs, then prints
# peak RSS (/usr/bin/time -v) per file, for rprof and, where given, an
# older rprof binary and Linux perf on the same files.
#
#   bash benches/memory.sh                     # rprof only
#   OLD=/path/to/old/rprof bash benches/memory.sh
#   PERF=1 bash benches/memory.sh              # also `perf report` (slow on the big files)
#
# Needs /usr/bin/time (package time) and about 1.5 GB of free disk in $TMPDIR.
#
# Measured (2-core VM, one run; peak RSS in MB, old = before streaming):
#   file        samples    size  rprof   old
#   few-64MB     350000      64     13   262
#   few-256MB   1399000     256     14  1039
#   few-1GB     5593000    1024     14  4144
#   many-80MB    263000      80     35   312   (50,000 unique 32-deep stacks)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --example gen_recording
cargo build --release --quiet
RPROF=$PWD/target/release/rprof
GEN=$PWD/target/release/examples/gen_recording
DIR=$(mktemp -d "${TMPDIR:-/tmp}/rprof-memory.XXXXXX")
trap 'rm -rf "$DIR"' EXIT

peak_mb() { # peak RSS in MB of a command
  /usr/bin/time -v -o "$DIR/time" "$@" >/dev/null 2>&1 || true
  awk -F: '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$DIR/time"
}
wall_s() {
  awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.2f", s}' "$DIR/time"
}

# name size_mb unique_stacks depth
cases=(
  "few-64MB 64 64 16"
  "few-256MB 256 64 16"
  "few-1GB 1024 64 16"
  "many-80MB 80 50000 32"
)

printf '%-10s %9s %9s %12s %12s %12s\n' file samples size_MB rprof_MB rprof_s old_MB
for spec in "${cases[@]}"; do
  read -r name size stacks depth <<<"$spec"
  file="$DIR/$name.data"
  samples=$("$GEN" "$file" "$size" "$stacks" "$depth" | awk '{print $1}')
  real_mb=$(( $(stat -c %s "$file") >> 20 ))
  rprof_mb=$(peak_mb "$RPROF" report -i "$file" --format folded)
  rprof_s=$(wall_s)
  old_mb=-
  if [ -n "${OLD:-}" ]; then old_mb=$(peak_mb "$OLD" report -i "$file" --format folded); fi
  printf '%-10s %9s %9s %12s %12s %12s\n' "$name" "$samples" "$real_mb" "$rprof_mb" "$rprof_s" "$old_mb"
  if [ -n "${PERF:-}" ] && [ "$size" -le 256 ]; then
    perf_mb=$(peak_mb perf report -i "$file" --stdio --no-children)
    echo "           perf report: ${perf_mb} MB, $(wall_s) s"
  fi
  rm -f "$file"
done

#!/usr/bin/env bash
# rprof and Linux perf side by side on the same workload; prints medians and
# ratios (rprof / perf, lower is better). Run as root on an idle machine:
#   bash benches/compare-perf.sh [RUNS]
# Needs: perf (linux-perf), gcc, /usr/bin/time (package time); installs
# inferno's CLIs with cargo if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
FREQ=999
SECS=3

cargo build --release --quiet
RPROF=$PWD/target/release/rprof
WORK_DIR=$(mktemp -d /tmp/rprof-compare.XXXXXX)
trap 'rm -rf "$WORK_DIR"' EXIT
cc -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -o "$WORK_DIR/work" tests/workloads/work.c -ldl -pthread
WORK="$WORK_DIR/work"
if ! command -v inferno-collapse-perf >/dev/null; then
  cargo install --quiet inferno
fi

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# Median wall time in ms of RUNS runs of a command.
median_ms() {
  for _ in $(seq "$RUNS"); do
    t0=$(now_ns)
    "$@"
    echo $(( $(now_ns) - t0 ))
  done | median | awk '{printf "%.1f", $1 / 1e6}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }'; }
# CPU seconds (user+sys) of a command and its waited-for children.
cpu_of() { /usr/bin/time -f '%U %S' -o "$WORK_DIR/time" "$@" >/dev/null 2>&1 || true; awk '{print $1 + $2}' "$WORK_DIR/time"; }

echo "rprof vs perf: $RUNS runs each (medians), tests/workloads/work.c, -F $FREQ -g"
echo

# 1+2. Attached at -F $FREQ -g to a fixed-work run: the target's slowdown
# (its own wall time, which it measures, against an unprofiled run) and the
# profiler's own CPU time (the target is not its child, so not counted).
ROUNDS=6000
for tool in none perf rprof; do
  : > "$WORK_DIR/slow.$tool"
  : > "$WORK_DIR/cpu.$tool"
  for _ in $(seq "$RUNS"); do
    "$WORK" loops $ROUNDS > "$WORK_DIR/out" &
    pid=$!
    until grep -q ready "$WORK_DIR/out" 2>/dev/null; do sleep 0.01; done
    case $tool in
      none) ;;
      perf) cpu_of perf record -q -F $FREQ -g -p "$pid" -o "$WORK_DIR/p.data" >> "$WORK_DIR/cpu.$tool" ;;
      rprof) cpu_of "$RPROF" record -F $FREQ -g -p "$pid" -o "$WORK_DIR/r.data" >> "$WORK_DIR/cpu.$tool" ;;
    esac
    wait "$pid"
    sed -n 's/truth elapsed_ns=//p' "$WORK_DIR/out" >> "$WORK_DIR/slow.$tool"
  done
done
base=$(median < "$WORK_DIR/slow.none")
perf_slow=$(ratio "$(median < "$WORK_DIR/slow.perf")" "$base")
rprof_slow=$(ratio "$(median < "$WORK_DIR/slow.rprof")" "$base")
echo "target slowdown (wall of fixed work): perf x$perf_slow  rprof x$rprof_slow  ratio $(ratio "$rprof_slow" "$perf_slow")"
perf_cpu=$(median < "$WORK_DIR/cpu.perf")
rprof_cpu=$(median < "$WORK_DIR/cpu.rprof")
echo "profiler CPU while attached (s): perf $perf_cpu  rprof $rprof_cpu  ratio $(ratio "$rprof_cpu" "$perf_cpu")  (target <= 0.5)"

# 3. Fixed cost: wall time of `record -- true`.
perf_record_true() { perf record -q -o "$WORK_DIR/t.data" -- true >/dev/null 2>&1; }
rprof_record_true() { "$RPROF" record -o "$WORK_DIR/t.data" -- true >/dev/null 2>&1; }
perf_true_ms=$(median_ms perf_record_true)
rprof_true_ms=$(median_ms rprof_record_true)
echo "record -- true wall (ms): perf $perf_true_ms  rprof $rprof_true_ms  ratio $(ratio "$rprof_true_ms" "$perf_true_ms")  (target rprof < 50 ms)"

# 4. File size per sample, same workload and rate.
perf record -q -F $FREQ -g -o "$WORK_DIR/p.data" -- "$WORK" split $SECS >/dev/null 2>&1
"$RPROF" record -F $FREQ -g -o "$WORK_DIR/r.data" -- "$WORK" split $SECS >/dev/null 2>&1
samples_of() { "$RPROF" report -i "$1" | sed -n 's/.*), \([0-9]*\) samples.*/\1/p'; }
perf_bps=$(( $(stat -c %s "$WORK_DIR/p.data") / $(samples_of "$WORK_DIR/p.data") ))
rprof_bps=$(( $(stat -c %s "$WORK_DIR/r.data") / $(samples_of "$WORK_DIR/r.data") ))
echo "file bytes per sample: perf $perf_bps  rprof $rprof_bps (incl. embedded symbols)  ratio $(ratio "$rprof_bps" "$perf_bps")"

# 5. Recording -> folded stacks with line/inline detail, on perf's recording.
# perf gets line and inline detail from addr2line, as rprof resolves them
# (inferno skips the srcline lines, with warnings we hide).
perf_fold() { perf script -i "$WORK_DIR/p.data" --inline -F +srcline 2>/dev/null | inferno-collapse-perf --all >/dev/null 2>&1; }
rprof_fold() { "$RPROF" report -i "$WORK_DIR/p.data" --format folded >/dev/null; }
perf_fold_ms=$(median_ms perf_fold)
rprof_fold_ms=$(median_ms rprof_fold)
echo "perf.data -> folded (ms): perf script|inferno $perf_fold_ms  rprof $rprof_fold_ms  speed-up x$(ratio "$perf_fold_ms" "$rprof_fold_ms")  (target >= 10)"

# 6. Peak memory (/usr/bin/time -v), same inputs: reporting perf's recording,
# and recording the workload itself.
peak_mb() { /usr/bin/time -v -o "$WORK_DIR/peak" "$@" >/dev/null 2>&1 || true; awk -F: '/Maximum resident/ {printf "%.1f", $2 / 1024}' "$WORK_DIR/peak"; }
perf_report_mb=$(peak_mb perf report -i "$WORK_DIR/p.data" --stdio)
rprof_report_mb=$(peak_mb "$RPROF" report -i "$WORK_DIR/p.data")
echo "report peak RSS (MB): perf $perf_report_mb  rprof $rprof_report_mb  ratio $(ratio "$rprof_report_mb" "$perf_report_mb")"
perf_record_mb=$(peak_mb perf record -q -F $FREQ -g -o "$WORK_DIR/p2.data" -- "$WORK" split $SECS)
rprof_record_mb=$(peak_mb "$RPROF" record -F $FREQ -g -o "$WORK_DIR/r2.data" -- "$WORK" split $SECS)
echo "record peak RSS incl. symbol embedding (MB): perf $perf_record_mb  rprof $rprof_record_mb  ratio $(ratio "$rprof_record_mb" "$perf_record_mb")"

#!/usr/bin/env bash
# rprof and Linux perf side by side on the same workload; prints medians and
# ratios (rprof / perf, lower is better). Run as root on an idle machine:
#   bash benches/compare-perf.sh [RUNS]          # everything
#   bash benches/compare-perf.sh fp [RUNS]       # frame-pointer mode (-g) only
#   bash benches/compare-perf.sh dwarf [RUNS]    # DWARF mode only (< 5 min)
#   bash benches/compare-perf.sh stat [RUNS]     # rprof stat vs perf stat (seconds)
#   bash benches/compare-perf.sh offcpu [RUNS]   # off-CPU recording overhead
#   bash benches/compare-perf.sh continuous [MIN] # always-on: -a -g at 19 and 99 Hz,
#                                                 # rotating every 60 s and pushing (MIN minutes each)
#   bash benches/compare-perf.sh soak [MIN]      # the same for MIN (60) minutes, both rates and
#                                                 # perf beside each at once: CPU, RSS growth, push lag
#                                                 # (SOAK_SAMPLES=FILE keeps the per-minute samples)
# Needs: perf (linux-perf), gcc, g++, python3, /usr/bin/time (package time);
# installs inferno's CLIs with cargo if missing. The DWARF section also
# uses perf 6.12 (unpacked into /opt/perf-6.12, see perf612 below) and
# samply where it is on PATH (`cargo install samply --locked`).
# Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
SECTION=all
case ${1:-} in fp | dwarf | stat | offcpu | continuous | soak | all) SECTION=$1; shift ;; esac
RUNS=${1:-5}
FREQ=999
SECS=3

cargo build --release --quiet
RPROF=${CARGO_TARGET_DIR:-$PWD/target}/release/rprof
WORK_DIR=$(mktemp -d /tmp/rprof-compare.XXXXXX)
trap 'rm -rf "$WORK_DIR"' EXIT
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
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) print "n/a"; else printf "%.3f", a / b }'; }
# CPU seconds (user+sys) of a command and its waited-for children.
cpu_of() { /usr/bin/time -f '%U %S' -o "$WORK_DIR/time" "$@" >/dev/null 2>&1 || true; awk '{print $1 + $2}' "$WORK_DIR/time"; }
samples_of() { "$RPROF" report -i "$1" | sed -n 's/.*), \([0-9]*\) samples.*/\1/p'; }

fp_section() {
cc -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -o "$WORK_DIR/work" tests/workloads/work.c -ldl -pthread -lm
WORK="$WORK_DIR/work"

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
}

# perf 6.12 (Debian's bookworm-backports linux-perf) without touching the
# system's perf 6.1: its .deb is fetched with apt-get download through a
# private apt configuration (the backports suite of the machine's own Debian
# source, so no mirror is named here), unpacked with dpkg -x into
# /opt/perf-6.12, and run from there with the one library it needs beyond
# 6.1's (libtraceevent1, from the machine's own suites) beside it:
#   LD_LIBRARY_PATH=/opt/perf-6.12/usr/lib/x86_64-linux-gnu /opt/perf-6.12/usr/bin/perf
# Prints the command to run, or nothing when it cannot be had.
PERF612_DIR=/opt/perf-6.12
perf612() {
  local bin=$PERF612_DIR/usr/bin/perf lib=$PERF612_DIR/usr/lib/x86_64-linux-gnu
  if [ ! -x "$bin" ]; then
    # The first Debian entry's archive and suite (deb822 or one-line form).
    local apt=$WORK_DIR/apt uri codename
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    codename=$(awk '/^Suites:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$uri" ]; then
      uri=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
      codename=$(awk '/^deb / {print $3; exit}' /etc/apt/sources.list 2>/dev/null || true)
    fi
    [ -n "$codename" ] || codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$uri" ] && [ -n "$codename" ] || return 0
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    echo "deb $uri $codename-backports main" > "$apt/sources.list"
    local opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
      -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache")
    (cd "$apt" && apt-get -qq "${opts[@]}" update && apt-get -qq "${opts[@]}" download "linux-perf/$codename-backports" \
      && apt-get -qq download libtraceevent1) >/dev/null 2>&1 || return 0
    mkdir -p "$PERF612_DIR"
    for deb in "$apt"/*.deb; do dpkg -x "$deb" "$PERF612_DIR"; done
  fi
  LD_LIBRARY_PATH=$lib "$bin" --version >/dev/null 2>&1 && echo "env LD_LIBRARY_PATH=$lib $bin"
}

# A C++ program with full debug info, big enough that naming addresses with
# inline frames costs what it costs on real programs: N functions, each with
# its own inlined helper, calling each other through a table so samples
# spread over all of them, and K instantiations of std::sort and std::map
# code (libstdc++'s deep inlining). N=3000, K=24: about 4.5 MB of DWARF,
# a minute of g++ -O2 -g on a 2-core VM.
gen_big_cpp() { # N K
  local n=$1 k=$2 i
  cat <<'CPP'
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <vector>
template <int I> struct Tag { unsigned long v; bool operator<(const Tag &o) const { return v < o.v; } };
template <int I> static inline unsigned long mix(unsigned long x) {
  for (int k = 0; k < 40; k++) x = x * 6364136223846793005UL + I;
  return x;
}
template <int I> __attribute__((noinline)) unsigned long work(unsigned long x) {
  std::vector<Tag<I>> v(48);
  for (auto &t : v) { x = mix<I>(x); t.v = x; }
  std::sort(v.begin(), v.end());
  std::map<unsigned long, Tag<I>> m;
  for (int k = 0; k < 12; k++) m[v[k].v % 97] = v[k];
  return x ^ m.begin()->first;
}
typedef unsigned long (*fn)(unsigned long, int);
CPP
  echo "extern const fn table[$n];"
  for ((i = 0; i < n; i++)); do
    echo "static inline unsigned long h$i(unsigned long x) { for (int k = 0; k < 200; k++) x = (x ^ (x >> 13)) * ${i}1UL + k; return x; }"
    echo "__attribute__((noinline)) unsigned long f$i(unsigned long x, int d) { x = h$i(x); if (!(x & 15)) x = work<$((i % k))>(x); return d ? table[(x >> 7) % $n](x, d - 1) + 1 : x; }"
  done
  echo "const fn table[$n] = {"
  for ((i = 0; i < n; i++)); do echo "f$i,"; done
  cat <<CPP
};
int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 1;
  unsigned long x = 1;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    x = table[x % $n](x, 3 + x % 8);
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while (t.tv_sec - t0.tv_sec + (t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
  printf("x=%lu\n", x);
}
CPP
}

# DWARF mode (--call-graph dwarf) on code built without frame pointers.
dwarf_section() {
  local work=$WORK_DIR/work-nofp busy=$WORK_DIR/busy big=$WORK_DIR/big
  cc -O2 -g -fomit-frame-pointer -o "$work" tests/workloads/work.c -ldl -pthread -lm
  cc -O2 -g -fomit-frame-pointer -o "$busy" tests/workloads/busy_threads.c -pthread
  # samply refuses to start while perf_event_paranoid > 1, even as root;
  # it is run in a private mount namespace where that file reads 1 (the
  # kernel's setting is untouched; root opens the events anyway).
  local samply=
  if command -v samply >/dev/null; then
    samply=samply
    echo 1 > "$WORK_DIR/paranoid"
    printf '#!/bin/sh\nmount --bind %s /proc/sys/kernel/perf_event_paranoid && exec samply record "$@"\n' \
      "$WORK_DIR/paranoid" > "$WORK_DIR/samply-record"
    chmod +x "$WORK_DIR/samply-record"
  fi
  echo "DWARF mode: rprof vs perf ${samply:+and samply }(medians of $RUNS), -F $FREQ --call-graph dwarf, workloads built -O2 -g -fomit-frame-pointer"
  echo

  # D1. File size per sample, same workload and rate. rprof's file holds
  # what its report needs (call chains or stack copies, and symbols).
  perf record -q -F $FREQ --call-graph dwarf -o "$WORK_DIR/pd.data" -- "$work" split $SECS >/dev/null 2>&1
  "$RPROF" record -F $FREQ --call-graph dwarf -o "$WORK_DIR/rd.data" -- "$work" split $SECS >/dev/null 2>&1
  local perf_bps rprof_bps
  perf_bps=$(( $(stat -c %s "$WORK_DIR/pd.data") / $(samples_of "$WORK_DIR/pd.data") ))
  rprof_bps=$(( $(stat -c %s "$WORK_DIR/rd.data") / $(samples_of "$WORK_DIR/rd.data") ))
  echo "dwarf file bytes per sample: perf $perf_bps  rprof $rprof_bps  ratio $(ratio "$rprof_bps" "$perf_bps")"

  # D2. Profiler CPU: each tool launches busy_threads (1 thread, $SECS s);
  # the profiler's CPU is the CPU of the whole command less what the target
  # itself used (it prints its own getrusage). rprof's includes unwinding.
  profiler_cpu() { # TOOL THREADS: profiler CPU seconds; samples, lost and due in $WORK_DIR/run.*
    local tool=$1 threads=$2 total
    case $tool in
      perf) total=$(cpu_of sh -c "perf record -F $FREQ --call-graph dwarf -o '$WORK_DIR/pc.data' -- '$busy' $threads $SECS >'$WORK_DIR/run.out' 2>'$WORK_DIR/run.err'") ;;
      rprof) total=$(cpu_of sh -c "'$RPROF' record -F $FREQ --call-graph dwarf -o '$WORK_DIR/rc.data' -- '$busy' $threads $SECS >'$WORK_DIR/run.out' 2>'$WORK_DIR/run.err'") ;;
      # Recording and unwinding only: neither perf nor samply names
      # anything while recording (rprof embeds every name it will show).
      rprof-nosym) total=$(cpu_of sh -c "'$RPROF' record --no-embed-symbols -F $FREQ --call-graph dwarf -o '$WORK_DIR/rc.data' -- '$busy' $threads $SECS >'$WORK_DIR/run.out' 2>'$WORK_DIR/run.err'") ;;
      samply) total=$(cpu_of sh -c "unshare -m '$WORK_DIR/samply-record' -r $FREQ --save-only -o '$WORK_DIR/sc.json.gz' -- '$busy' $threads $SECS >'$WORK_DIR/run.out' 2>'$WORK_DIR/run.err'") ;;
    esac
    local target_ns
    target_ns=$(sed -n 's/truth cpu_ns=\([0-9]*\).*/\1/p' "$WORK_DIR/run.out")
    if [ -z "$target_ns" ]; then # the tool failed: say so, do not guess
      echo n/a; echo 0 > "$WORK_DIR/run.due"; return
    fi
    awk -v t="$total" -v n="$target_ns" 'BEGIN {printf "%.3f", t - n / 1e9}'
    # Samples due: the target's CPU time at FREQ per CPU second.
    awk -v n="$target_ns" -v f=$FREQ 'BEGIN {printf "%d", n / 1e9 * f}' > "$WORK_DIR/run.due"
  }
  local tools=(perf rprof ${samply:+samply})
  declare -A cpu
  for tool in "${tools[@]}" rprof-nosym; do
    for _ in $(seq "$RUNS"); do profiler_cpu "$tool" 1; echo; done > "$WORK_DIR/cpu.$tool"
    cpu[$tool]=$(median < "$WORK_DIR/cpu.$tool")
  done
  echo "dwarf profiler CPU, 1 busy thread for $SECS s (s): perf ${cpu[perf]}  rprof ${cpu[rprof]}${samply:+  samply ${cpu[samply]}}  ratio rprof/perf $(ratio "${cpu[rprof]}" "${cpu[perf]}")${samply:+  rprof/samply $(ratio "${cpu[rprof]}" "${cpu[samply]:-0}")}"
  echo "  rprof recording + unwinding without embedding symbols: ${cpu[rprof-nosym]}  ratio to perf $(ratio "${cpu[rprof-nosym]}" "${cpu[perf]}")${samply:+  to samply $(ratio "${cpu[rprof-nosym]}" "${cpu[samply]:-0}")}"

  # D3. Lost samples with 16 busy threads ($SECS s): what each tool says it
  # lost, and the samples it kept against those due (target CPU x FREQ).
  # perf's losses are read from its file (LOST / LOST_SAMPLES records) by
  # rprof's reader; samply reports none, so only its kept share shows.
  local line=
  for tool in "${tools[@]}"; do
    local lost kept due
    profiler_cpu "$tool" 16 >/dev/null
    due=$(cat "$WORK_DIR/run.due")
    case $tool in
      perf)
        kept=$(samples_of "$WORK_DIR/pc.data")
        lost=$("$RPROF" report -i "$WORK_DIR/pc.data" | sed -n 's/^# Lost: \([0-9]*\) samples.*/\1/p') ;;
      rprof)
        kept=$(sed -n 's/.*rprof record: \([0-9]*\) samples, \([0-9]*\) lost.*/\1/p' "$WORK_DIR/run.err")
        lost=$(sed -n 's/.*rprof record: \([0-9]*\) samples, \([0-9]*\) lost.*/\2/p' "$WORK_DIR/run.err") ;;
      samply)
        kept=$(python3 -c 'import gzip, json, sys
p = json.load(gzip.open(sys.argv[1]))
print(sum(t["samples"]["length"] for t in p["threads"]))' "$WORK_DIR/sc.json.gz" 2>/dev/null || echo 0)
        lost=n/a ;;
    esac
    line+="  $tool lost ${lost:-0}, kept $kept of $due due ($(awk -v k="$kept" -v d="$due" 'BEGIN {printf "%.0f", d ? 100 * k / d : 0}')%)"
  done
  echo "dwarf lost samples, 16 busy threads for $SECS s on $(nproc) CPUs:$line"

  # D4. Recording -> folded stacks with inline frames, on a big C++
  # program with full debug info. Same perf.data for every reader; rprof
  # also on its own recording of the same program. perf 6.1 names inline
  # frames through binutils addr2line (slow: run once, capped at 150 s,
  # a ">" marks the cap); perf 6.12 is timed without inline frames.
  gen_big_cpp 3000 24 > "$WORK_DIR/big.cc"
  local t0
  t0=$(now_ns)
  g++ -O2 -g -fomit-frame-pointer -o "$big" "$WORK_DIR/big.cc"
  local debug_mb
  debug_mb=$(size -A "$big" | awk '/^\.debug_/ {s += $2} END {printf "%.1f", s / 1048576}')
  echo "big C++ program: built in $(( ($(now_ns) - t0) / 1000000000 )) s, $debug_mb MB of DWARF"
  perf record -q -F $FREQ --call-graph dwarf -o "$WORK_DIR/pb.data" -- "$big" 2 >/dev/null 2>&1
  "$RPROF" record -F $FREQ --call-graph dwarf -o "$WORK_DIR/rb.data" -- "$big" 2 >/dev/null 2>&1
  rprof_fold_perf() { "$RPROF" report -i "$WORK_DIR/pb.data" --format folded >/dev/null; }
  rprof_fold_own() { "$RPROF" report -i "$WORK_DIR/rb.data" --format folded >/dev/null; }
  local rprof_perf_ms rprof_own_ms
  rprof_perf_ms=$(median_ms rprof_fold_perf)
  rprof_own_ms=$(median_ms rprof_fold_own)
  local p612 p612_ms=n/a
  p612=$(perf612)
  if [ -n "$p612" ]; then
    perf612_fold() { $p612 script -i "$WORK_DIR/pb.data" --no-inline 2>/dev/null | inferno-collapse-perf >/dev/null 2>&1; }
    p612_ms=$(median_ms perf612_fold)
  fi
  local p61_ms p61_mark=
  t0=$(now_ns)
  if ! timeout 150 sh -c "perf script -i '$WORK_DIR/pb.data' --inline -F +srcline 2>/dev/null | inferno-collapse-perf --all >/dev/null 2>&1"; then
    p61_mark='>'
  fi
  p61_ms=$(( ($(now_ns) - t0) / 1000000 ))
  echo "dwarf perf.data ($(samples_of "$WORK_DIR/pb.data") samples) -> folded with inline frames (ms): rprof $rprof_perf_ms (own recording: $rprof_own_ms)  perf 6.1 --inline $p61_mark$p61_ms  perf 6.12 --no-inline $p612_ms"
  echo "  speed-up vs perf 6.1 with inline: $p61_mark x$(ratio "$p61_ms" "$rprof_perf_ms") (target >= 50); vs perf 6.12 without inline: x$(ratio "$p612_ms" "$rprof_perf_ms") (target >= 1)"
}

# Off-CPU recording overhead (`bash benches/compare-perf.sh offcpu [RUNS]`):
# a switch-heavy fixed-work run (tests/workloads/offcpu.c pingpong: two
# threads passing a byte over pipes, about 110 k switches/s here),
# attached with `rprof record --off-cpu -g` (default: about 1000 sampled
# switch-outs/s per thread; and --off-cpu-every 1, every switch) and with
# `perf record -e sched:sched_switch -g` (every switch): the target's
# slowdown and the profiler's own CPU time.
offcpu_section() {
  cc -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -o "$WORK_DIR/offcpu" tests/workloads/offcpu.c -pthread
  local work="$WORK_DIR/offcpu" trips=100000 tool
  echo "off-CPU recording overhead: $RUNS runs each (medians), offcpu.c pingpong $trips, attached with -p"
  for tool in none perf rprof rprof_every; do
    : > "$WORK_DIR/slow.$tool"
    : > "$WORK_DIR/cpu.$tool"
    for _ in $(seq "$RUNS"); do
      "$work" pingpong $trips > "$WORK_DIR/out" &
      local pid=$!
      until grep -q ready "$WORK_DIR/out" 2>/dev/null; do sleep 0.01; done
      case $tool in
        none) ;;
        perf) cpu_of perf record -q -e sched:sched_switch -g -p "$pid" -o "$WORK_DIR/p.data" >> "$WORK_DIR/cpu.$tool" ;;
        rprof) cpu_of "$RPROF" record --off-cpu -g -p "$pid" -o "$WORK_DIR/r.data" >> "$WORK_DIR/cpu.$tool" ;;
        rprof_every) cpu_of "$RPROF" record --off-cpu --off-cpu-every 1 -g -p "$pid" -o "$WORK_DIR/r.data" >> "$WORK_DIR/cpu.$tool" ;;
      esac
      wait "$pid"
      sed -n 's/truth elapsed_ns=//p' "$WORK_DIR/out" >> "$WORK_DIR/slow.$tool"
    done
  done
  local base perf_slow rprof_slow every_slow perf_cpu rprof_cpu every_cpu
  base=$(median < "$WORK_DIR/slow.none")
  perf_slow=$(ratio "$(median < "$WORK_DIR/slow.perf")" "$base")
  rprof_slow=$(ratio "$(median < "$WORK_DIR/slow.rprof")" "$base")
  every_slow=$(ratio "$(median < "$WORK_DIR/slow.rprof_every")" "$base")
  echo "target slowdown (wall of fixed work): perf sched_switch x$perf_slow  rprof --off-cpu x$rprof_slow (ratio $(ratio "$rprof_slow" "$perf_slow"))  rprof --off-cpu-every 1 x$every_slow (ratio $(ratio "$every_slow" "$perf_slow"))"
  perf_cpu=$(median < "$WORK_DIR/cpu.perf")
  rprof_cpu=$(median < "$WORK_DIR/cpu.rprof")
  every_cpu=$(median < "$WORK_DIR/cpu.rprof_every")
  echo "profiler CPU while attached (s): perf $perf_cpu  rprof --off-cpu $rprof_cpu (ratio $(ratio "$rprof_cpu" "$perf_cpu"))  rprof --off-cpu-every 1 $every_cpu (ratio $(ratio "$every_cpu" "$perf_cpu"))"
}

# rprof stat against perf stat: the fixed cost of counting `true` (default
# event set), and the page faults of a fixed allocation (within 2%).
stat_section() {
  cc -O2 -o "$WORK_DIR/statwork" tests/workloads/statwork.c
  local n=$(( RUNS < 21 ? 21 : RUNS ))
  stat_true() { for _ in $(seq "$n"); do t0=$(now_ns); "$@" -- true 2>/dev/null; echo $(( $(now_ns) - t0 )); done | median | awk '{printf "%.2f", $1 / 1e6}'; }
  local perf_ms rprof_ms
  perf_ms=$(stat_true perf stat)
  rprof_ms=$(stat_true "$RPROF" stat)
  echo "stat -- true, wall (ms, median of $n): perf $perf_ms  rprof $rprof_ms  ratio $(ratio "$rprof_ms" "$perf_ms")  (target <= 1)"
  faults_of() { for _ in $(seq 5); do "$@" stat -x, -e page-faults -- "$WORK_DIR/statwork" pages 4000 2>&1 >/dev/null | awk -F, '$3 == "page-faults" {print $1}'; done | median; }
  local perf_faults rprof_faults
  perf_faults=$(faults_of perf)
  rprof_faults=$(faults_of "$RPROF")
  echo "page-faults of 4000 touched pages (median of 5): perf $perf_faults  rprof $rprof_faults  ratio $(ratio "$rprof_faults" "$perf_faults")  (target within 0.98-1.02)"
}

# Always-on recording: `rprof record -a -g --rotate 60s --push` (to a local
# Pyroscope-style receiver) beside `perf record -a -g --switch-output=60s`,
# both running at the same time for MIN minutes at 19 Hz, then at 99 Hz.
# Prints each profiler's CPU (share of one core, after the first minute),
# its RSS at the end of minute 2 and at the end (growth), and how long after
# each interval's end its profile arrived.
# A local push receiver: logs "arrival until bytes name" per profile to
# $1; sets RECEIVER_URL and RECEIVER_PID.
start_receiver() {
  local receiver="$WORK_DIR/receiver.py" port_file="$WORK_DIR/port"
  rm -f "$port_file"
  cat > "$receiver" <<'PY'
import http.server, sys, time, urllib.parse
class Ingest(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
        with open(sys.argv[2], "a") as log:
            log.write("%.3f %s %d %s\n" % (time.time(), query.get("until", "0"), len(body), query.get("name", "")))
        self.send_response(200); self.end_headers()
    def log_message(self, *args): pass
server = http.server.HTTPServer(("127.0.0.1", 0), Ingest)
open(sys.argv[1], "w").write(str(server.server_port))
server.serve_forever()
PY
  python3 "$receiver" "$port_file" "$1" &
  RECEIVER_PID=$!
  until [ -s "$port_file" ]; do sleep 0.1; done
  RECEIVER_URL="http://127.0.0.1:$(cat "$port_file")"
}

continuous_section() {
  local minutes=${1:-10} hz
  local log="$WORK_DIR/arrivals"
  start_receiver "$log"
  local url=$RECEIVER_URL receiver_pid=$RECEIVER_PID
  # CPU ticks (user + system) and RSS (kB) of a pid.
  ticks_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  rss_of() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
  local hz_ticks
  hz_ticks=$(getconf CLK_TCK)
  echo "always-on, system-wide -g, rotating every 60 s, $minutes min per rate (rprof and perf at the same time)"
  for hz in 19 99; do
    : > "$log"
    rm -rf "$WORK_DIR/rot" "$WORK_DIR/spool"; mkdir -p "$WORK_DIR/perf-rot"
    "$RPROF" record -a -F "$hz" -g --rotate 60s --keep 3 -o "$WORK_DIR/rot/" \
      --push "$url" --label service_name=bench --spool-dir "$WORK_DIR/spool" 2> "$WORK_DIR/rprof.err" &
    local rprof_pid=$!
    (cd "$WORK_DIR/perf-rot" && exec perf record -q -a -F "$hz" -g --switch-output=60s --switch-max-files=3 -o p.data) 2> "$WORK_DIR/perf.err" &
    local perf_pid=$!
    sleep 60
    local r0 p0 t0
    r0=$(ticks_of "$rprof_pid"); p0=$(ticks_of "$perf_pid"); t0=$(now_ns)
    sleep 60
    local rprof_rss2 perf_rss2
    rprof_rss2=$(rss_of "$rprof_pid"); perf_rss2=$(rss_of "$perf_pid")
    sleep $(( (minutes - 2) * 60 ))
    local r1 p1 t1 rprof_rss perf_rss
    r1=$(ticks_of "$rprof_pid"); p1=$(ticks_of "$perf_pid"); t1=$(now_ns)
    rprof_rss=$(rss_of "$rprof_pid"); perf_rss=$(rss_of "$perf_pid")
    kill -TERM "$rprof_pid"; kill -INT "$perf_pid"
    wait "$rprof_pid" || true; wait "$perf_pid" || true
    local secs rprof_pct perf_pct lag pushed
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}')
    rprof_pct=$(awk -v d=$(( r1 - r0 )) -v s="$secs" -v h="$hz_ticks" 'BEGIN {printf "%.2f", 100 * d / h / s}')
    perf_pct=$(awk -v d=$(( p1 - p0 )) -v s="$secs" -v h="$hz_ticks" 'BEGIN {printf "%.2f", 100 * d / h / s}')
    pushed=$(wc -l < "$log")
    lag=$(awk '$2 > 0 {print $1 - $2}' "$log" | sort -n | tail -1)
    echo "-F $hz: CPU (% of one core, minutes 2-$minutes): perf $perf_pct  rprof $rprof_pct  ratio $(ratio "$rprof_pct" "$perf_pct")  (target rprof <= 1)"
    echo "-F $hz: RSS (MB) after 2 min -> after $minutes min: perf $(( perf_rss2 / 1024 )) -> $(( perf_rss / 1024 ))  rprof $(( rprof_rss2 / 1024 )) -> $(( rprof_rss / 1024 ))"
    echo "-F $hz: rprof pushed $pushed profiles; latest arrival after its interval's end: ${lag:-n/a} s (target <= 2)"
  done
  kill "$receiver_pid" 2>/dev/null || true
}

# Always-on for an hour: rprof at 19 and 99 Hz and perf at each rate, all
# at once (each records the others too). RSS and CPU ticks of the four
# every minute; memory growth is the end against minute 10 (the symbol
# cache fills in the first intervals), and the peak after minute 10.
soak_section() {
  local minutes=${1:-60}
  local log="$WORK_DIR/arrivals"
  start_receiver "$log"
  local url=$RECEIVER_URL receiver_pid=$RECEIVER_PID hz_ticks
  hz_ticks=$(getconf CLK_TCK)
  echo "always-on soak: -a -g, rotating every 60 s, $minutes min; rprof (pushing) and perf at 19 and 99 Hz, all four at once"
  declare -A pid
  for hz in 19 99; do
    mkdir -p "$WORK_DIR/perf$hz"
    "$RPROF" record -a -F "$hz" -g --rotate 60s --keep 3 -o "$WORK_DIR/rot$hz/" \
      --push "$url" --label service_name=soak$hz --spool-dir "$WORK_DIR/spool$hz" 2> "$WORK_DIR/rprof$hz.err" &
    pid[rprof$hz]=$!
    (cd "$WORK_DIR/perf$hz" && exec perf record -q -a -F "$hz" -g --switch-output=60s --switch-max-files=3 -o p.data) 2> "$WORK_DIR/perf$hz.err" &
    pid[perf$hz]=$!
  done
  # Samples half-way through each minute: an interval's finish (a peak of
  # a few seconds, after which the memory is trimmed) falls on the minute.
  local samples="$WORK_DIR/soak.tsv" minute tool
  sleep 30
  for minute in $(seq 0 $(( minutes - 1 ))); do
    for tool in rprof19 perf19 rprof99 perf99; do
      # CPU ticks, then VmRSS, VmHWM, RssAnon and RssFile in KiB.
      echo "$minute $tool $(awk '{print $14 + $15}' "/proc/${pid[$tool]}/stat") $(awk '{v[$1] = $2} END {print v["VmRSS:"], v["VmHWM:"], v["RssAnon:"], v["RssFile:"]}' "/proc/${pid[$tool]}/status")"
    done >> "$samples"
    sleep $(( minute < minutes - 1 ? 60 : 30 ))
  done
  for tool in rprof19 rprof99; do kill -TERM "${pid[$tool]}"; done
  for tool in perf19 perf99; do kill -INT "${pid[$tool]}"; done
  for tool in rprof19 perf19 rprof99 perf99; do wait "${pid[$tool]}" || true; done
  local base=$(( minutes >= 20 ? 10 : minutes / 2 ))
  for hz in 19 99; do
    for tool in rprof$hz perf$hz; do
      # Sample k is at k + 0.5 minutes.
      awk -v t="$tool" -v last=$(( minutes - 1 )) -v b="$base" -v h="$hz_ticks" '
        $2 == t && $1 == 2 { c0 = $3 }
        $2 == t && $1 == b { r0 = $4; a0 = $6; f0 = $7 }
        $2 == t && $1 >= b && $4 > high { high = $4 }
        $2 == t && $1 >= b && $6 > ahigh { ahigh = $6 }
        $2 == t && $1 == last { c1 = $3; r1 = $4; hwm = $5; a1 = $6; f1 = $7 }
        END {
          printf "%s: CPU %.2f%% of one core (minutes 2.5-%.1f); RSS %.1f MB at minute %.1f -> %.1f MB at minute %.1f (%+.1f%%), highest sampled %.1f MB, peak (VmHWM) %.1f MB\n",
            t, 100 * (c1 - c0) / h / ((last - 2) * 60), last + 0.5, r0 / 1024, b + 0.5, r1 / 1024, last + 0.5,
            100 * (r1 - r0) / r0, high / 1024, hwm / 1024
          printf "%s:   of it anonymous (heap, RssAnon) %.1f -> %.1f MB (%+.1f%%), highest sampled %.1f MB; file pages (RssFile: its binary and mapped modules) %.1f -> %.1f MB\n",
            t, a0 / 1024, a1 / 1024, 100 * (a1 - a0) / a0, ahigh / 1024, f0 / 1024, f1 / 1024
        }' "$samples"
    done
    local lag pushed
    pushed=$(awk -v n="soak$hz" 'index($4, n "{") == 1 || $4 == n' "$log" | wc -l)
    lag=$(awk -v n="soak$hz" '(index($4, n "{") == 1 || $4 == n) && $2 > 0 {print $1 - $2}' "$log" | sort -n | tail -1)
    echo "rprof$hz: pushed $pushed profiles, latest arrival ${lag:-n/a} s after its interval's end (target <= 2); $(grep -o '[0-9]* samples, [0-9]* lost' "$WORK_DIR/rprof$hz.err" | tail -1)"
  done
  kill "$receiver_pid" 2>/dev/null || true
  # The per-minute samples, for a plot or a closer look.
  if [ -n "${SOAK_SAMPLES:-}" ]; then cp "$samples" "$SOAK_SAMPLES"; fi
}

case $SECTION in
  stat) stat_section ;;
  fp) fp_section ;;
  dwarf) dwarf_section ;;
  offcpu) offcpu_section ;;
  continuous) continuous_section "$RUNS" ;;
  soak) soak_section "${1:-60}" ;;
  all) fp_section; echo; dwarf_section; echo; stat_section; echo; offcpu_section ;;
esac

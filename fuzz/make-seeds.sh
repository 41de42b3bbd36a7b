#!/usr/bin/env bash
# Regenerates the fuzz seed corpus in fuzz/seeds/ from short real
# recordings of the test workload (tests/workloads/work.c), each well under
# 64 KiB:
#   seeds/perfdata/rprof.data         rprof record -g (with its embedded symbol table)
#   seeds/perfdata/perf-g.data        perf record -g
#   seeds/perfdata/perf-z.data        perf record -z -g
#   seeds/perfdata/perf-pipe.data     perf record -g -o - (pipe mode, saved)
#   seeds/perfdata/perf-z-dwarf.data  perf record --compression-level=22 --call-graph=dwarf:
#                                     the highest decompression ratio seen in real data
#   seeds/symbol_table/rprof.table    the RPROF_SYMBOLS section of rprof.data
# Needs cc, Linux perf, python3 and perf_event_open (root, or
# kernel.perf_event_paranoid <= 1). Run from anywhere: bash fuzz/make-seeds.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seeds=$root/fuzz/seeds
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cargo build -q --manifest-path "$root/Cargo.toml" --bin rprof
rprof=$root/target/debug/rprof
cc -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer \
    "$root/tests/workloads/work.c" -o "$tmp/work" -ldl -pthread -lm

cd "$tmp"

"$rprof" record -g -F 999 -o rprof.data -- sh -c 'exec ./work split 0.3 > /dev/null' 2> /dev/null
perf record -q -g -F 99 -o perf-g.data -- sh -c 'exec ./work child 0.3 > /dev/null'
perf record -q -z -g -F 99 -o perf-z.data -- sh -c 'exec ./work child 0.3 > /dev/null'
perf record -q -g -F 99 -o - -- sh -c 'exec ./work child 0.3 > /dev/null' > perf-pipe.data
perf record -q --compression-level=22 --call-graph=dwarf,65528 -F 5000 -m 16M \
    -o perf-z-dwarf.data -- sh -c 'exec ./work child 1 > /dev/null'

# The RPROF_SYMBOLS feature section (bit 200): the feature table follows
# the data section, one (offset, size) pair per set bit, in bit order.
python3 - rprof.data rprof.table <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
data_at, data_size = struct.unpack_from("<QQ", data, 40)
bitmap = int.from_bytes(data[72:104], "little")
index = bin(bitmap & ((1 << 200) - 1)).count("1")
assert bitmap >> 200 & 1, "no RPROF_SYMBOLS section"
offset, size = struct.unpack_from("<QQ", data, data_at + data_size + 16 * index)
open(sys.argv[2], "wb").write(data[offset:offset + size])
PY

mkdir -p "$seeds/perfdata" "$seeds/symbol_table"
for f in rprof.data perf-g.data perf-z.data perf-pipe.data perf-z-dwarf.data; do
    install -m 0644 "$f" "$seeds/perfdata/$f"
done
install -m 0644 rprof.table "$seeds/symbol_table/rprof.table"
ls -l "$seeds"/*/

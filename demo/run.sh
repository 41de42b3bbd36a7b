#!/usr/bin/env bash
# Builds rprof and the demo workload, records it, and writes a report,
# folded stacks and a flame graph into demo/out/.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "Building rprof (release; about a minute on 2 cores the first time)..."
cargo build --release
echo "Built: target/release/rprof (install it on your PATH with: cargo install --path .)"
mkdir -p demo/out
cc -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -fno-optimize-sibling-calls -o demo/out/demo demo/demo.c

rprof=target/release/rprof
$rprof record -g -F 999 -o demo/out/demo.data -- demo/out/demo 2
$rprof report -i demo/out/demo.data --percent-limit 2
$rprof report -i demo/out/demo.data --format folded -o demo/out/demo.folded
$rprof report -i demo/out/demo.data --format svg -o demo/out/flame.svg
echo
echo "folded stacks: demo/out/demo.folded   flame graph: demo/out/flame.svg (open in a browser)"

#!/bin/bash
# A/B: a baseline build directory (another commit, built with scripts/setup in a worktree) against build/, interleaved, same captures.
cd "$(dirname "$0")/../.."
base=${1:?usage: tests/bench/before_after.sh BASELINE_BUILD_DIR}
./scripts/bench-reassembly 1000 64 1 >/dev/null 2>&1   # makes out/bench/smtp-1000x64k.pcap
pcap=out/bench/smtp-1000x64k.pcap
for r in 1 2 3; do
  for b in $base build; do
    echo "reassembly $b: $($b/tests/bench_reassembly $pcap 5 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["gbit_per_s"])')"
  done
done
./scripts/bench-workers 1 400 256 >/dev/null 2>&1 || true   # makes the replay capture
cap=out/bench/smtp-400x256k-g16.pcap
tmp=$(mktemp -d)
printf 'lcores:\n  rx: [1]\n  workers: []\n' > $tmp/w0.yaml
printf 'lcores:\n  rx: [1]\n  workers: [2]\n' > $tmp/w1.yaml
for r in 1 2 3; do
  for cfg in w0 w1; do
    for b in $base build; do
      s=$($b/control/sluiced --config $tmp/$cfg.yaml --replay $cap --events $tmp/ev.json 2>&1 | sed -n 's/^sluiced: ran \([0-9.]*\) s$/\1/p'); rm -f $tmp/ev.json
      echo "replay $cfg $b: $s s"
    done
  done
done
ls -l $cap

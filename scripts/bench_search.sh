#!/usr/bin/env bash
# Success vs token budget with the embedded model on CPU: every strategy at budgets worth about
# 1, 4, 16 and 64 samples on benchmarks/easy (the target: adaptive matches best-of-n's success at
# 64 with at most a quarter of its tokens), and best-of-n and adaptive at 16 on a subset of
# ../shared/bench/dev. Two streams run side by side: the compute lock makes their generations
# and timing rounds take turns, so verdicts stay clean while one stream's equivalence checks and
# test runs use the other core. About 2 hours on 2 cores. Then one combined JSON / CSV /
# plot for benchmarks/easy.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
SHARED=${SHARED:-../shared/bench/dev}
mkdir -p "$OUT"
bench() { PYTHONPATH=server .venv/bin/python -m speedsmith bench "$@" --seed 0 --budget-seconds 300; }
(
  bench benchmarks/easy --strategy best-of-n --budget 1 4 16 64 --out "$OUT/easy-best-of-n.json"
  bench benchmarks/easy --strategy maxmode --budget 1 4 16 --out "$OUT/easy-maxmode.json"
  bench benchmarks/easy --strategy maxmode --budget 64 --out "$OUT/easy-maxmode-64.json"
) > "$OUT/stream-1.log" 2>&1 &
(
  bench benchmarks/easy --strategy adaptive --budget 1 4 16 64 --out "$OUT/easy-adaptive.json"
  bench benchmarks/easy --strategy revision --budget 1 4 16 --out "$OUT/easy-revision.json"
  if [ -d "$SHARED" ]; then
    bench "$SHARED" --strategy best-of-n --budget 16 --limit 12 --out "$OUT/shared-best-of-n.json"
    bench "$SHARED" --strategy adaptive --budget 16 --limit 12 --out "$OUT/shared-adaptive.json"
  fi
  bench benchmarks/easy --strategy revision --budget 64 --out "$OUT/easy-revision-64.json"
) > "$OUT/stream-2.log" 2>&1 &
wait
PYTHONPATH=server .venv/bin/python scripts/bench_combine.py "$OUT"/easy-*.json \
  --out "$OUT/easy.json" --plot "$OUT/easy.png" \
  --title "benchmarks/easy: success vs generated tokens (SmolLM2-135M Q4_1, CPU)"

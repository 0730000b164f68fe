#!/usr/bin/env bash
# Success vs token budget on benchmarks/easy with the embedded model on CPU, one bench run per
# strategy (each well under 20 minutes), then one combined JSON / CSV / plot.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/results
mkdir -p "$OUT"
for strategy in best-of-n revision maxmode adaptive; do
  PYTHONPATH=server .venv/bin/python -m speedsmith bench benchmarks/easy \
    --strategy "$strategy" --budget 150 400 --seed 0 --budget-seconds 120 \
    --out "$OUT/easy-$strategy.json"
done
PYTHONPATH=server .venv/bin/python benchmarks/combine.py "$OUT"/easy-*.json \
  --out "$OUT/easy.json" --plot "$OUT/easy.png"

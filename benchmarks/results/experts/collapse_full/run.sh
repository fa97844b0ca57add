#!/usr/bin/env bash
# The axis-collapse report of benchmarks/results/experts/README.md §2, from the repository root.
# DATA: the public data folder (../shared/data here). On a 2-core CPU the two training modes run as two
# parallel processes with one thread each; the final command finds every adapter trained and only evaluates.
set -euo pipefail
DATA=${DATA:-/work/shared/data}
OUT=benchmarks/results/experts/collapse_full
for mode in inject no_inject; do
  OMP_NUM_THREADS=1 axial collapse-report --out $OUT --modes $mode --train-only data_root=$DATA &
done
wait
axial collapse-report --out $OUT --modes inject,no_inject --combined uniform,sequential,mixed \
  --bench truthfulqa_mc,harmless,alpaca \
  --data truthfulqa=$DATA/truthfulqa/TruthfulQA.csv \
  --data harmless=$DATA/hh-rlhf/harmless-base_test_dev.jsonl \
  --data alpaca=$DATA/alpaca_eval/text_davinci_003_model_outputs.json \
  --limit-for truthfulqa_mc=200 --limit-for harmless=80 --limit-for alpaca=50 --max-new-tokens 96 \
  --judge harmless=rm:benchmarks/results/rewards/harmless_rm \
  --judge-validation helpful=benchmarks/results/rewards/validate_embedded_helpful.json \
  data_root=$DATA

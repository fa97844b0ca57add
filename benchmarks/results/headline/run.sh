#!/usr/bin/env bash
# The headline re-measurement (issue 13 item 6): base, each expert, the uniform merge and MoCaE v2 on the
# harmless, over-refusal and honest benches, held-out (split=test) items, one output folder that resumes.
# Stages run one after another so each stage's items exist for every variant early; the last call only
# reads the stored items back and writes eval/report.{json,md,png}.
set -euo pipefail
D=${AXIAL_DATA:-/work/shared/data}; E=axial/experts_embedded
ALPACA=$D/alpaca_eval/text_davinci_003_model_outputs.json
common=(--model embedded --dtype bf16 --experts $E/helpful --experts $E/harmless --experts $E/honest
  --variant base --variant expert:helpful --variant expert:harmless --variant expert:honest --variant uniform
  --variant mocae:benchmarks/results/mocae/v2/router_main
  --data truthfulqa=$D/truthfulqa/TruthfulQA.csv --data harmless=$D/hh-rlhf/harmless-base_test_dev.jsonl
  --data overrefusal=$ALPACA --data alpaca=$ALPACA --split test
  --limit truthfulqa_mc=200 --limit harmless=200 --limit overrefusal=200 --limit truthfulqa_gen=420
  --judge harmless=rm:benchmarks/results/rewards/harmless_rm
  --set harmless_max_new_tokens=128 --set max_new_tokens=128 --out benchmarks/results/headline/eval)
stage=${1:-all}
if [[ $stage == all || $stage == harmless ]]; then python -m axial.cli eval "${common[@]}" --bench harmless; fi
if [[ $stage == all || $stage == overrefusal ]]; then python -m axial.cli eval "${common[@]}" --bench overrefusal; fi
if [[ $stage == all || $stage == truthfulqa_gen ]]; then python -m axial.cli eval "${common[@]}" --bench truthfulqa_gen; fi
if [[ $stage == all || $stage == report ]]; then
  python -m axial.cli eval "${common[@]}" --bench truthfulqa_mc,truthfulqa_gen,harmless,overrefusal
fi

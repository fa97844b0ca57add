#!/usr/bin/env bash
# Issue 14 item 5, the part that fits this CPU: base, the three experts, the uniform merge (= linear
# interpolation at the centre preference), MoCaE trained on source labels (v2), MoCaE trained with the
# preference objective, and HoE router experts at the centre preference, on the same held-out items as
# ../../headline/ (whose stored items for the first six variants were copied into items/ and are resumed).
# Usage: run.sh [VARIANT ...]   (default: all eight)
set -euo pipefail
D=${AXIAL_DATA:-/work/shared/data}; E=axial/experts_embedded; R=benchmarks/results/routing
variants=("$@")
[[ ${#variants[@]} -gt 0 ]] || variants=(base expert:helpful expert:harmless expert:honest uniform
  mocae:benchmarks/results/mocae/v2/router_main mocae:$R/mocae_pref "hoe:helpful=1,harmless=1,honest=1?set=$R/hoe")
vflags=(); for v in "${variants[@]}"; do vflags+=(--source "$v"); done
python -m axial.cli eval --model embedded --dtype bf16 --experts $E/helpful --experts $E/harmless --experts $E/honest \
  "${vflags[@]}" --bench truthfulqa_mc,harmless,truthfulqa_gen \
  --data truthfulqa=$D/truthfulqa/TruthfulQA.csv --data harmless=$D/hh-rlhf/harmless-base_test_dev.jsonl --split test \
  --limit truthfulqa_mc=200 --limit harmless=200 --limit truthfulqa_gen=200 \
  --judge harmless=rm:benchmarks/results/rewards/harmless_rm \
  --judge-validation harmless=benchmarks/results/judges/harmless/validation.json \
  --out $R/table harmless_max_new_tokens=128 max_new_tokens=128

#!/usr/bin/env bash
# Over-refusal (benign AlpacaEval test-half instructions answered with a refusal, by the refusal detector) for
# the eight variants of ../table/, on the responses ../table_alpaca/ generated (copied into items/; the
# overrefusal bench reuses alpaca.responses.jsonl when both read the same data, so nothing is regenerated).
set -euo pipefail
D=${AXIAL_DATA:-/work/shared/data}; E=axial/experts_embedded; R=benchmarks/results/routing
ALPACA=$D/alpaca_eval/text_davinci_003_model_outputs.json
for d in $R/table_alpaca/items/*/; do n=$(basename "$d"); mkdir -p "$R/table_overrefusal/items/$n"
  cp "$d"/alpaca.responses* "$R/table_overrefusal/items/$n/"; done
python -m axial.cli eval --model embedded --dtype bf16 --experts $E/helpful --experts $E/harmless --experts $E/honest \
  --source base --source expert:helpful --source expert:harmless --source expert:honest --source uniform \
  --source mocae:benchmarks/results/mocae/v2/router_main --source mocae:$R/mocae_pref \
  --source "hoe:helpful=1,harmless=1,honest=1?set=$R/hoe" --bench overrefusal \
  --data overrefusal=$ALPACA --data alpaca=$ALPACA --split test --limit overrefusal=200 \
  --out $R/table_overrefusal max_new_tokens=128

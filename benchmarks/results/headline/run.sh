#!/usr/bin/env bash
# The headline re-measurement (issue 13 item 6): base, each expert, the uniform merge and MoCaE v2 on held-out
# (split=test) items of the honest, harmless and over-refusal benches, in one output folder that resumes.
# Usage: run.sh STAGE [VARIANT ...]   STAGE = harmless | overrefusal | truthfulqa_gen | report | report_gen
# Stages run one after another (each stage's items exist for every variant early); the report stages only read
# the stored items back and write eval/report.{json,md,png} (MC, harmless, over-refusal; six variants) and
# eval_gen/report.* (truthfulqa_gen, read from the same items).
set -euo pipefail
D=${AXIAL_DATA:-/work/shared/data}; E=axial/experts_embedded
ALPACA=$D/alpaca_eval/text_davinci_003_model_outputs.json
stage=${1:-report}; shift || true
variants=("$@")
[[ ${#variants[@]} -gt 0 ]] || variants=(base expert:helpful expert:harmless expert:honest uniform
                                         mocae:benchmarks/results/mocae/v2/router_main)
vflags=(); for v in "${variants[@]}"; do vflags+=(--variant "$v"); done
common=(--model embedded --dtype bf16 --experts $E/helpful --experts $E/harmless --experts $E/honest "${vflags[@]}"
  --data truthfulqa=$D/truthfulqa/TruthfulQA.csv --data harmless=$D/hh-rlhf/harmless-base_test_dev.jsonl
  --data overrefusal=$ALPACA --data alpaca=$ALPACA --split test
  --limit truthfulqa_mc=200 --limit harmless=200 --limit overrefusal=${N_OVERREFUSAL:-120} --limit truthfulqa_gen=200
  --judge harmless=rm:benchmarks/results/rewards/harmless_rm
  --judge-validation harmless=benchmarks/results/judges/harmless/validation.json
  --set harmless_max_new_tokens=128 --set max_new_tokens=128)
out=benchmarks/results/headline/eval
case $stage in
  harmless|overrefusal|truthfulqa_gen) python -m axial.cli eval "${common[@]}" --bench "$stage" --out $out ;;
  report) python -m axial.cli eval "${common[@]}" --bench truthfulqa_mc,harmless,overrefusal --out $out ;;
  report_gen)  # same items folder, separate report: link the stored truthfulqa_gen items
    mkdir -p ${out}_gen/items
    for d in $out/items/*/; do n=$(basename "$d"); mkdir -p ${out}_gen/items/$n
      cp -n $d/truthfulqa_gen* ${out}_gen/items/$n/ 2>/dev/null || true; done
    python -m axial.cli eval "${common[@]}" --bench truthfulqa_gen --out ${out}_gen ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The headline re-measurement (issue 13 item 6): base, each expert, the uniform merge and MoCaE v2 on held-out
# (split=test) items of the honest, harmless and over-refusal benches, in one output folder that resumes.
# Usage: run.sh STAGE [VARIANT ...]
#   STAGE = harmless | overrefusal | truthfulqa_gen   (generate + score into eval/items)
#         | report | report_overrefusal | report_gen  (read the stored items back: eval/, eval_overrefusal/,
#                                                      eval_gen/ each get report.{json,md,png})
# What was run (README.md): harmless and report for all six variants; truthfulqa_gen and report_gen for base and
# the three experts; overrefusal and report_overrefusal for base, expert:helpful and expert:harmless (the shared
# 2-core CPU ran out of time for the rest).
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
# A report over a subset of benches/variants reads the same stored items from its own folder.
report_from() {  # DEST BENCH FILE_PREFIX...
  local dest=$1 bench=$2; shift 2
  for d in $out/items/*/; do n=$(basename "$d"); mkdir -p "$dest/items/$n"
    for prefix in "$@"; do cp -n "$d"/"$prefix"* "$dest/items/$n/" 2>/dev/null || true; done; done
  python -m axial.cli eval "${common[@]}" --bench "$bench" --out "$dest"
}
case $stage in
  harmless|overrefusal|truthfulqa_gen) python -m axial.cli eval "${common[@]}" --bench "$stage" --out $out ;;
  report) python -m axial.cli eval "${common[@]}" --bench truthfulqa_mc,harmless --out $out ;;
  report_overrefusal) report_from ${out}_overrefusal overrefusal alpaca.responses overrefusal ;;
  report_gen) report_from ${out}_gen truthfulqa_gen truthfulqa_gen ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac

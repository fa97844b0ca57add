#!/usr/bin/env bash
# The learned helpful judge (issue 13 item 1), trained and validated as pre-registered in ../PLAN.md.
# Usage (from the repository root): run.sh featurise | train | validate | all
#   featurise  fill the reward-feature cache for the test-split GPT-4 pairs (1 per instruction) in the background
#              order the validation reads them (train pairs and PandaLM: same command with their specs; resumes)
#   train      the primary judge and the three judges reported beside it (CV on train-split GPT-4 pairs only)
#   validate   every judge once, beside length-only, on test-split PandaLM (all its pairs) and on the test-split
#              GPT-4 pairs. Not all of PandaLM, as ../PLAN.md says: 84 of PandaLM's 158 instructions are
#              AlpacaEval instructions the judges were trained on (both come from Self-Instruct's set), and
#              validate-judge refuses them; the test half shares no instruction with the training data.
set -euo pipefail
D=${AXIAL_DATA:-/work/shared/data}
GPT4=$D/alpaca_eval/gpt4_annotations/annotations_alpaca_eval_gpt4.jsonl.gz
PANDALM=$D/pandalm/testset-v1.json
# Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF: `axial fetch-model qwen2.5-coder-0.5b-instruct` prints its path.
ENC=${ENCODER:-/work/models/qwen2.5-coder-0.5b-instruct.gguf}
LAYERS=2,4,6,8,10,12,14,16,18,20,22,24
OUT=benchmarks/results/judges/helpful
PY=${PYTHON:-python}
# The encoder settings are part of the feature cache's key: the same ones everywhere, or everything re-encodes.
common=(encoder=$ENC dtype=bf16 max_length=1024 max_response_tokens=256 "candidate_layers=[$LAYERS]"
  "weight_decays=[0.001,0.01,0.03,0.1,0.3,1,10]" folds=5 seed=0 max_pairs_per_prompt=4
  max_test_pairs_per_prompt=1
  "encoder_source=Qwen/Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF: axial fetch-model qwen2.5-coder-0.5b-instruct")
train() {  # NAME OVERRIDES...
  local name=$1; shift
  $PY -m axial.cli train-reward --axis helpful --data "$GPT4" --out $OUT/$name "${common[@]}" "$@"
}
stage=${1:-all}
case $stage in
  featurise)
    $PY benchmarks/judges/featurise.py --encoder "$ENC" --layers $LAYERS "$PANDALM:all" "$GPT4:train:4" \
      "$GPT4:test:1" ;;
  train)
    # 1. primary: features residualised on a cubic in log-length + an explicit, scored length term; pooling,
    #    layer and weight decay by held-out BT loss on the length-balanced train pairs
    train rm_primary 'length_modes=["explicit"]' criterion=balanced_loss
    # 2a. the same fit (same pooling, layer, weight decay) scored without its length terms
    read -r pooling layer wd < <($PY -c "import json,sys; c=json.load(open(sys.argv[1]));
print(c['pooling'], c['layer'], c['weight_decay'])" $OUT/rm_primary/reward_config.json)
    train rm_removed 'length_modes=["removed"]' criterion=balanced_loss pooling=$pooling layer=$layer \
      weight_decay=$wd
    # 2b. plain BT chosen by held-out BT loss on all train pairs (train-reward's default criterion)
    train rm_free 'length_modes=["free"]' criterion=loss
    # 2c. plain BT on length-balanced pair weights, chosen like the primary
    train rm_balanced 'length_modes=["balanced"]' criterion=balanced_loss ;;
  validate)
    $PY -m axial.cli validate-judge --axis helpful \
      --judge rm:$OUT/rm_primary --judge rm:$OUT/rm_removed --judge rm:$OUT/rm_free --judge rm:$OUT/rm_balanced \
      --data "$PANDALM" --split test --max-pairs-per-prompt all \
      --data "$GPT4" --split test --max-pairs-per-prompt 1 \
      --out $OUT/validation.json --record ;;
  all) "$0" featurise; "$0" train; "$0" validate ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac

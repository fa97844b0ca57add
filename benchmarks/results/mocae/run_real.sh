#!/usr/bin/env bash
# The real MoCaE run on the embedded model: the commands behind the committed results in this folder.
# Usage: bash benchmarks/results/mocae/run_real.sh [EXPERTS_ROOT] [RUNS]   (EXPERTS_ROOT holds helpful/ harmless/ honest/)
set -euo pipefail
E=${1:-benchmarks/results/experts/embedded}
RUNS=${2:-/tmp/mocae_runs}
D=../shared/data
SRC=(--data "helpful=$D/stanford_alpaca/alpaca_5000.json" --data "harmless=$D/hh-rlhf/harmless-base_test_dev.jsonl"
     --data "honest=$D/truthfulqa/TruthfulQA.csv" --data builtin:helpful --data builtin:harmless --data builtin:honest)
EXP="$E/helpful,$E/harmless,$E/honest"

# Main router: per-layer linear heads, per-sequence routing, soft gate, TrinityX task-vector importance γ.
axial train-router --experts "$EXP" "${SRC[@]}" --out "$RUNS/main" importance=task_vector per_axis_limit=150
axial calibrate --router "$RUNS/main" --method temperature
# Ablation: one router shared by all layers (same cached features: they do not depend on the router's scope).
mkdir -p "$RUNS/shared" && cp "$RUNS/main/features.safetensors" "$RUNS/shared/"
axial train-router --experts "$EXP" "${SRC[@]}" --out "$RUNS/shared" importance=task_vector per_axis_limit=150 scope=shared
axial calibrate --router "$RUNS/shared" --method temperature
# Ablation: per-token routing (smaller, to fit the session: 60 prompts per axis, 8 sampled tokens per prompt).
axial train-router --experts "$EXP" "${SRC[@]}" --out "$RUNS/token" importance=task_vector per_axis_limit=60 tokens_per_prompt=8 granularity=token
axial calibrate --router "$RUNS/token" --method temperature resamples=200

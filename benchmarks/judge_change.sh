#!/usr/bin/env bash
# Judge a change by the project's rule (docs/experiments.md, "Keeping a change"): two seeds of a base
# recipe and two of the changed one, each continued from the same model (INIT) for STEPS steps on
# synthetic data only, each read zero-shot on every real set (benchmarks/real_plates.py), then
# benchmarks/keep_rule.py says keep or reject. INIT=scratch trains each run from scratch instead
# (a change to what the stream teaches per sample shows best there). From the repository root:
#
#     INIT=weights/crnn STEPS=1000 bash benchmarks/judge_change.sh configs/realism_crnn.yaml configs/robust_crnn.yaml
#     INIT=scratch STEPS=1500 bash benchmarks/judge_change.sh configs/crnn.yaml configs/crnn.yaml data.synth_bank_uses=4
#     INIT=weights/crnn bash benchmarks/judge_change.sh configs/realism_crnn.yaml configs/realism_crnn.yaml data.synth_effects.dirt=0
#
# Arguments: BASE_CONFIG CHANGE_CONFIG [key=value ...] (the overrides apply to the change only).
# A run continued from a model takes its input settings (docs/training.md): from weights/crnn, whose
# config.json turns light-text crops (input.dark_text), both recipes train on turned crops unless
# TRAIN_ARGS has data.dark_text=false (how weights/crnn itself was trained: on both polarities; its
# runs then read crops as given: READ_ARGS="--polarity auto" reads them turned, as weights/crnn reads).
# Environment: INIT (required), STEPS (1000), SEEDS ("0 1"), OUT (runs/judge/<name>), TRAIN_ARGS
# (overrides for both recipes, e.g. "data.num_workers=0"), READ_ARGS (options of every run's
# benchmarks/real_plates.py, e.g. "--polarity auto"), SETS (a glob of real sets; default: every
# ../shared/realplates-*). A run that ended (its test_metrics.json)
# and its real.json are not repeated, so an interrupted judgement continues where it stopped.
# Each run's synthetic test figure is its own test_metrics.json (the run's fixed synthetic test set).
set -euo pipefail

: "${INIT:?set INIT to the model both recipes continue from (e.g. INIT=weights/crnn), or INIT=scratch}"
[ $# -ge 2 ] || { echo "usage: INIT=MODEL|scratch bash benchmarks/judge_change.sh BASE_CONFIG CHANGE_CONFIG [key=value ...]" >&2; exit 2; }
BASE=$1 CHANGE=$2
shift 2
INIT_ARGS=()
[ "$INIT" = scratch ] || INIT_ARGS=(--init-from "$INIT")
for f in "$BASE" "$CHANGE" ${INIT_ARGS[@]:+"$INIT/config.json"}; do
    [ -f "$f" ] || { echo "judge_change.sh: no such file: $f" >&2; exit 2; }
done
STEPS=${STEPS:-1000}
read -r -a SEED_LIST <<< "${SEEDS:-0 1}"
NAME=$(basename "$BASE" .yaml)-vs-$(basename "$CHANGE" .yaml)${1:+-$(echo "$*" | tr ' =/' '_-_')}-$STEPS
OUT=${OUT:-runs/judge/$NAME}
read -r -a BOTH <<< "${TRAIN_ARGS:-}"
read -r -a READ <<< "${READ_ARGS:-}"

run() {  # run NAME CONFIG SEED [overrides...]
    local dir=$OUT/$1_s$3 config=$2 seed=$3
    shift 3
    if [ ! -f "$dir/test_metrics.json" ]; then  # written when a run ends: a run stopped midway is trained again
        python train_accelerate.py --config "$config" ${INIT_ARGS[@]:+"${INIT_ARGS[@]}"} --output-dir "$dir" --overwrite \
            train.max_steps="$STEPS" train.seed="$seed" "${BOTH[@]}" "$@"
    fi
    [ -f "$dir/real.json" ] || python benchmarks/real_plates.py --weights "$dir/best" --out "$dir/real.json" \
        ${SETS:+--sets "$SETS"} "${READ[@]}"
}

for s in "${SEED_LIST[@]}"; do
    run base "$BASE" "$s"
    run change "$CHANGE" "$s" "$@"
done

base_files=() change_files=()
for s in "${SEED_LIST[@]}"; do
    base_files+=("$OUT/base_s$s/real.json")
    change_files+=("$OUT/change_s$s/real.json")
done
echo "# $NAME (INIT=$INIT, $STEPS steps, seeds ${SEED_LIST[*]})"
for f in "${base_files[@]}" "${change_files[@]}"; do
    python -c "
import json, sys
d = json.load(open(sys.argv[1]))
t = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else {}
synth = next(iter(t.get('test', {}).values()), {}).get('overall', {}).get('exact_match')
sets = ' '.join(f'{k} {v[\"exact_match\"]:.4f}' for k, v in d['sets'].items())
print(f'{sys.argv[1]}: {sets}  macro {d[\"macro\"][\"exact_match\"]:.4f}  synthetic {synth}')
" "$f" "$(dirname "$f")/test_metrics.json"
done
python benchmarks/keep_rule.py --base "${base_files[@]}" --change "${change_files[@]}"

#!/usr/bin/env bash
# Fine-tune a model on half of the plates of ../shared/realplates-finetune and measure it before
# and after (docs/training.md: "Fine-tuning on your own real plates"). From the repository root:
#
#     bash benchmarks/finetune_realplates.sh [WEIGHTS [CONFIG]]
#
# WEIGHTS defaults to weights/crnn, CONFIG to configs/finetune_<arch of WEIGHTS>.yaml. Writes the
# split under datasets/realplates-finetune-split/ (CSV files pointing at the original crops; no
# image is copied), the run under runs/finetune/<timestamp>/ and the val.py results under its
# eval/ folder, then prints a before/after table. REAL, DEV and RUN override the paths.
set -euo pipefail

WEIGHTS=${1:-weights/crnn}
ARCH=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['arch'])" "$WEIGHTS/config.json")
CONFIG=${2:-configs/finetune_$ARCH.yaml}
REAL=${REAL:-../shared/realplates-finetune}
DEV=${DEV:-../shared/realplates-dev}
SPLIT=datasets/realplates-finetune-split
SYNTH_TEST=datasets/synth/test_n2000_seed2_2row0.15  # written by the run (data.test: synth) if missing
RUN=${RUN:-runs/finetune/$(date +%Y%m%d-%H%M%S)}
# On a CPU shared with other jobs, one OpenMP thread that sleeps when idle trains several times
# faster than two spinning ones (measured: ~5 instead of 0.15-1.3 steps/s on the 2-core machine).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

python -m data.split --data "$REAL" --out "$SPLIT" --ratio 0.4 0.1 --names train val test --seed 0
python train_accelerate.py --config "$CONFIG" --init-from "$WEIGHTS" --output-dir "$RUN" \
    data.train="$SPLIT/train" data.val="$SPLIT/val" "data.extra_test=[$SPLIT/test]"

python benchmarks/before_after.py --before "$WEIGHTS" --after "$RUN/best" --out "$RUN/eval" \
    --set "held-out plates=$SPLIT/test" --set "realplates-dev=$DEV:US:O=0" \
    --set "synthetic test set (2,000)=$SYNTH_TEST" --by-country realplates-dev

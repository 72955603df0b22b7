#!/usr/bin/env bash
# Adapt a model to ../shared/realplates-finetune without its labels and measure it before, after
# each round and after (docs/adaptation.md; figures in docs/experiments.md). From the repository root:
#
#     bash benchmarks/adapt_realplates.sh [WEIGHTS [KEY=VALUE ...]]
#
# Splits the set by plate text as benchmarks/finetune_realplates.sh does (same seed: the same
# parts), adapts WEIGHTS (default weights/crnn) on the train part's images -- its labels.csv lists
# them; its texts only measure the pseudo-labels' precision -- and reads the held-out test part
# after every round (--check). Then val.py scores the starting and the adapted model on the test
# part, ../shared/realplates-dev (--equiv US:O=0) and the synthetic test set. ROUNDS, STEPS,
# REAL, DEV, RUN, CONFIG (the round's training config), JOINT (adapt.py --joint: a second model
# reading with the adapted one) and TEACHER (adapt.py --teacher) override the defaults; trailing
# KEY=VALUE arguments override the round's training config (e.g. train.seed=1). The adaptation
# never sees realplates-dev or the test part.
set -euo pipefail

WEIGHTS=${1:-weights/crnn}
shift $(( $# > 0 ? 1 : 0 ))
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-400}
REAL=${REAL:-../shared/realplates-finetune}
DEV=${DEV:-../shared/realplates-dev}
SPLIT=datasets/realplates-finetune-split
SYNTH_TEST=datasets/synth/test_n2000_seed2_2row0.15
RUN=${RUN:-runs/adapt/$(date +%Y%m%d-%H%M%S)}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

python -m data.split --data "$REAL" --out "$SPLIT" --ratio 0.4 0.1 --names train val test --seed 0
python -c "from configs import load_config; from training import ensure_synth_set; ensure_synth_set(load_config('crnn').data, 'test')"
python adapt.py --weights "$WEIGHTS" --images "$SPLIT/train" --country BR --output-dir "$RUN" \
    --check "$SPLIT/test" --rounds "$ROUNDS" --steps "$STEPS" ${CONFIG:+--config "$CONFIG"} \
    ${JOINT:+--joint "$JOINT"} ${TEACHER:+--teacher "$TEACHER"} "$@"

python - "$RUN" <<'EOF_PY'
import json, sys
from pathlib import Path

pct = lambda x: "-" if x is None else f"{100 * x:.2f}%"
print("\n| round | kept crops (share) | pseudo-label precision | test part exact match |\n|---:|---:|---:|---:|")
for r in map(json.loads, (Path(sys.argv[1]) / "adapt_log.jsonl").read_text().splitlines()):
    print(f"| {r['round']} | {r['kept']} ({pct(r['kept_share'])}) | {pct(r.get('pseudo_label_precision'))} "
          f"| {pct(r.get('check_exact_match'))} |")
EOF_PY
python benchmarks/before_after.py --before "$WEIGHTS" --after "$RUN/model" --out "$RUN/eval" \
    --set "held-out plates=$SPLIT/test" --set "realplates-dev=$DEV:US:O=0" \
    --set "synthetic test set (2,000)=$SYNTH_TEST" --by-country realplates-dev

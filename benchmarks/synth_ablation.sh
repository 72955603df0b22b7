#!/usr/bin/env bash
# What each group of synthetic realism effects is worth on real crops (docs/experiments.md: "Realism
# effects: what they are worth on real photographs"). From a model trained on the classic plates (INIT), one run
# per variant continues for STEPS steps with configs/realism_<arch>.yaml (synthetic data only),
# then reads ../shared/realplates-dev (evaluation only). From the repository root:
#
#     INIT=runs/crnn/classic/best bash benchmarks/synth_ablation.sh                 # all variants
#     INIT=weights/attn bash benchmarks/synth_ablation.sh all none
#
# Variants: all (the config's effects), none (no realism and no camera effects: INIT's own
# training data, so it measures the extra steps alone), no-<group> (one group off: fonts,
# clutter, surface, surround, capture), no-<effect> (one effect off, e.g. no-stroke_font). Continuing from a converged model gives every variant
# the same budget and start, so a score says what its plates teach rather than how fast they
# are learnt (trained from scratch for 1,500 steps, the hardest mix simply lags). A variant
# whose run already has best/ is not trained again. Prints a Markdown table starting with INIT.
set -euo pipefail

: "${INIT:?set INIT to a model folder trained on the classic plates, e.g. INIT=runs/crnn/classic/best}"
ARCH=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['arch'])" "$INIT/config.json")
STEPS=${STEPS:-1000}
DEV=${DEV:-../shared/realplates-dev}
OUT=${OUT:-runs/ablation/$ARCH-$STEPS-from-$(basename "$(dirname "$INIT")")-$(basename "$INIT")}
VARIANTS=("$@")
[ ${#VARIANTS[@]} -eq 0 ] && VARIANTS=(all none no-fonts no-clutter no-surface no-surround no-capture)

overrides() {
    case $1 in
        all) ;;
        none) echo "data.synth_effects=null data.camera_effects=null" ;;
        no-capture) echo "data.camera_effects=null" ;;
        no-*) PYTHONPATH=. python -c "
import sys
from data.synth.effects import EFFECT_GROUPS, SynthEffects
name = sys.argv[1]
keys = EFFECT_GROUPS.get(name, (name,))
if any(k not in SynthEffects.__dataclass_fields__ for k in keys):
    sys.exit(f'unknown variant no-{name}: groups {sorted(EFFECT_GROUPS)}, or an effect name')
print(' '.join(f'data.synth_effects.{k}=0' for k in keys))" "${1#no-}" ;;
        *) echo "unknown variant $1" >&2; exit 2 ;;
    esac
}

for v in "${VARIANTS[@]}"; do
    ov=$(overrides "$v")
    run=$OUT/$v
    if [ ! -d "$run/best" ]; then
        # shellcheck disable=SC2086
        accelerate launch train_accelerate.py --config "configs/realism_$ARCH.yaml" --init-from "$INIT" \
            --output-dir "$run" train.max_steps="$STEPS" $ov
    fi
    python val.py --weights "$run/best" --data "$DEV" --equiv US:O=0 --out "$run/dev.json" --no-gallery > /dev/null
done

# INIT itself, on the same two sets
mkdir -p "$OUT/start"
[ -f "$OUT/start/dev.json" ] || python val.py --weights "$INIT" --data "$DEV" --equiv US:O=0 \
    --out "$OUT/start/dev.json" --no-gallery > /dev/null
[ -f "$OUT/start/test_metrics.json" ] || python val.py --weights "$INIT" \
    --data datasets/synth/test_n2000_seed2_2row0.15 --out "$OUT/start/synth.json" --no-gallery > /dev/null
[ -f "$OUT/start/test_metrics.json" ] || python -c "import json, sys; json.dump({'test': {'synth-test': json.load(open(sys.argv[1]))}}, open(sys.argv[2], 'w'))" \
    "$OUT/start/synth.json" "$OUT/start/test_metrics.json"
VARIANTS=(start "${VARIANTS[@]}")

python - "$OUT" "$DEV" "${VARIANTS[@]}" <<'EOF'
import json, sys
from pathlib import Path

out, dev, variants = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
pct = lambda x: f"{100 * x:.2f}"
rows = []
for v in variants:
    d = json.loads((out / v / "dev.json").read_text())
    t = json.loads((out / v / "test_metrics.json").read_text())
    synth = t["test"]["synth-test"]["overall"]["exact_match"]
    rows.append((v, d, synth))
countries = sorted({c for _, d, _ in rows for c in d["by_country"]})
print(f"\n| variant | {dev} exact match | " + " | ".join(countries) + " | synthetic test |")
print("|---|---:|" + "---:|" * len(countries) + "---:|")
for v, d, synth in rows:
    per = " | ".join(pct(d["by_country"][c]["exact_match"]) if c in d["by_country"] else "-" for c in countries)
    print(f"| {v} | {pct(d['overall']['exact_match'])} | {per} | {pct(synth) if synth is not None else '-'} |")
print(f"\nruns under {out}; realplates-dev scored with --equiv US:O=0")
EOF

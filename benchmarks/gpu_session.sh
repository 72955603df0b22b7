#!/usr/bin/env bash
# A training run on a lent GPU machine in ONE call, prepared and tested here on CPU (GPU time is
# short: about 15 minutes a session, 10 a command). Two steps:
#
#   bash benchmarks/gpu_session.sh wheels
#       here: the cp312 wheels the GPU machine lacks (albumentations and its dependencies,
#       rapidfuzz, the font packages), at this environment's versions, into .whl (git-ignored)
#   bash benchmarks/gpu_session.sh train CONFIG MINUTES [key=value ...]
#       there (the run folder: runs/gpu/<config name>, or RUN; device tool: run(command="bash benchmarks/gpu_session.sh train configs/attn_gpu.yaml 7",
#       carry=[".whl"], timeout_s=600)): installs .whl if present, trains CONFIG for at most MINUTES
#       of training (then the run tests its best model, as every run does) with `nvidia-smi dmon`
#       sampling the GPU each second, and leaves under $OUT: summary.txt (steps/s, samples/s, the
#       data-wait share, the GPU busy share, the end of the training output) and the run folder
#       (best/, log.jsonl, test_metrics.json, config.yaml) as run.tgz.part-* of at most 15 MiB
#       (the device tool brings back files of at most 16 MiB). Here: cat run.tgz.part-* | tar xz
set -euo pipefail
cd "$(dirname "$0")/.."

wheels() {
    local py=${PYTHON:-python}
    mkdir -p .whl
    grep -qxF "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
    local names=(albumentations albucore pydantic pydantic-core annotated-types typing-inspection typing-extensions
                 stringzilla simsimd rapidfuzz font-roboto font-fjallaone font-source-sans-pro)
    local platforms=() n
    for n in 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
    for name in "${names[@]}"; do
        local version
        version=$("$py" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
        [ -n "$version" ] || { echo "gpu_session.sh: $name is not installed here" >&2; exit 2; }
        # Pure-Python packages and sdists (font-roboto has no wheel) are built here; the rest downloaded for cp312.
        "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            "${platforms[@]}" --platform manylinux2014_x86_64 -d .whl "$name==$version" 2>/dev/null \
            || "$py" -m pip wheel -q --no-deps -w .whl "$name==$version"
    done
    ls .whl
}

train() {
    [ $# -ge 2 ] || { echo "usage: bash benchmarks/gpu_session.sh train CONFIG MINUTES [key=value ...]" >&2; exit 2; }
    local config=$1 minutes=$2
    shift 2
    [ -f "$config" ] || { echo "gpu_session.sh: no such config: $config" >&2; exit 2; }
    local out=${OUT:-runs/gpu_session}
    local name
    name=$(basename "$config" .yaml)
    local run=${RUN:-runs/gpu/$name}
    mkdir -p "$out"
    # The wheels are cp312, the GPU machine's Python: elsewhere (a test here) they are left alone.
    if compgen -G ".whl/*.whl" > /dev/null && python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    local dmon=""
    if command -v nvidia-smi > /dev/null; then
        nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/gpu.txt" || true
        nvidia-smi dmon -s u -d 1 > "$out/dmon.txt" 2>&1 &
        dmon=$!
    fi
    local rc=0
    python3 train_accelerate.py --config "$config" --output-dir "$run" --overwrite \
        train.time_limit_minutes="$minutes" "$@" > "$out/train.log" 2>&1 || rc=$?
    [ -z "$dmon" ] || kill "$dmon" 2> /dev/null || true
    # The summary and the parts are written before anything is printed: a closed stdout loses nothing.
    python3 - "$run" "$out" "$rc" > "$out/summary.txt" << 'EOF'
import json, sys
from pathlib import Path

import yaml

sys.path.insert(0, "benchmarks")
from train_speed import speed, training_rows

run, out, rc = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
print(f"run {run}: exit {rc}")
gpu = out / "gpu.txt"
print("device:", gpu.read_text().strip() if gpu.is_file() else "no nvidia-smi (CPU)")
log = run / "log.jsonl"
if log.is_file():
    rows = training_rows(log)
    if len(rows) >= 3:
        rate, wait, steps = speed(log, rows[1]["step"], rows)  # the first logged stretch is start-up
        batch = yaml.safe_load((run / "config.yaml").read_text())["train"]["batch_size"]
        print(f"train: {rate:.2f} steps/s, {rate * batch:.0f} samples/s (batch {batch}), data_wait {100 * wait:.0f} % over {steps} steps")
dmon = out / "dmon.txt"
if dmon.is_file():
    cols, sm = None, []
    for line in dmon.read_text().splitlines():
        parts = line.split()
        if line.startswith("# gpu"):
            cols = parts[1:]
        elif cols and parts and not line.startswith("#") and "sm" in cols:
            v = parts[cols.index("sm")]
            sm.append(int(v) if v.isdigit() else 0)
    busy = [i for i, v in enumerate(sm) if v > 0]
    if busy:  # from the first busy second to the last: the run, validation included
        span = sm[busy[0] : busy[-1] + 1]
        print(f"GPU busy (nvidia-smi dmon sm %): mean {sum(span) / len(span):.0f} % over {len(span)} s")
metrics = run / "test_metrics.json"
if metrics.is_file():
    for name, m in json.loads(metrics.read_text()).get("test", {}).items():
        print(f"test {name}: exact match {m['overall']['exact_match']:.4f}")
print("--- end of the training output")
text = (out / "train.log").read_text(errors="replace").replace("\r", "\n")
print("\n".join([line for line in text.splitlines() if line.strip()][-15:]))
EOF
    local files=()
    local f
    for f in best log.jsonl test_metrics.json config.yaml; do
        [ -e "$run/$f" ] && files+=("$(basename "$run")/$f")
    done
    if [ ${#files[@]} -gt 0 ]; then
        tar czf - -C "$(dirname "$run")" "${files[@]}" | split -b 15m -d - "$out/run.tgz.part-"
    fi
    cat "$out/summary.txt" || true
    return "$rc"
}

case ${1:-} in
    wheels) shift; wheels "$@" ;;
    train) shift; train "$@" ;;
    *) echo "usage: bash benchmarks/gpu_session.sh wheels | train CONFIG MINUTES [key=value ...]" >&2; exit 2 ;;
esac

"""benchmarks/gpu_session.sh train: a tiny run on CPU with a stand-in nvidia-smi, its summary and its parts."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

from safetensors.numpy import load_file

from tests.test_train import TINY

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_session.sh"

# `nvidia-smi dmon -s u -d 1` prints a header, then one row a second: idle, busy, idle again.
FAKE_SMI = """#!/usr/bin/env bash
if [ "$1" = dmon ]; then
    echo "# gpu    sm   mem   enc   dec   jpg   ofa"
    echo "# Idx     %     %     %     %     %     %"
    for v in 0 0 80 60 - 76 0; do echo "    0 $v 10 0 0 0 0"; done
    sleep 600
else
    echo "Stand-in GPU, 1 MiB"
fi
"""


def session(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(tmp_path / "out"),
           "RUN": str(tmp_path / "runs" / "tiny"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_train_brings_back_figures_and_the_run(tmp_path):
    proc = session(["train", "configs/crnn.yaml", "1", *TINY, "train.max_steps=6", "train.log_every=2",
                    f"data.synth_dir={tmp_path / 'synth'}", "train.trackers=[]"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert "exit 0" in summary and "device: Stand-in GPU, 1 MiB" in summary
    assert " samples/s (batch 8), data_wait " in summary
    assert "GPU busy (nvidia-smi dmon sm %): mean 54 % over 4 s" in summary  # 80 60 - 76: the first busy second to the last
    assert "test synth-test: exact match " in summary

    parts = sorted((tmp_path / "out").glob("run.tgz.part-*"))
    assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts)
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts)), mode="r:gz") as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "back", filter="data")
    assert {"tiny/log.jsonl", "tiny/test_metrics.json", "tiny/config.yaml"} <= set(names)
    assert load_file(tmp_path / "back" / "tiny" / "best" / "model.safetensors")  # the weights, whole


def test_train_names_a_missing_config(tmp_path):
    proc = session(["train", "configs/no_such.yaml", "5"], tmp_path)
    assert proc.returncode == 2 and "no such config: configs/no_such.yaml" in proc.stderr

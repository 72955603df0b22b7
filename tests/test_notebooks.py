"""The notebooks run top to bottom (on tiny data: PLATE_OCR_NB_FAST=1), so they cannot rot.

The kernel is this interpreter: a kernelspec pointing at ``sys.executable`` is written to a
temporary folder on JUPYTER_PATH (nothing is installed for the user).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbclient
import nbformat
import pytest

pytestmark = pytest.mark.slow  # trains or runs whole programs: `pytest -m "not slow"` skips it

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ("EDA.ipynb", "input_size_and_backbone.ipynb", "results_analysis.ipynb")
KERNEL = "plate-ocr-test"
MAX_CELL_LINES = 12  # the logic lives in analysis/: a notebook cell calls and plots
MAX_PARAMETER_LINES = 16  # the cell tagged "parameters" (the settings a user edits)


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernelspec for this interpreter on JUPYTER_PATH, and the notebooks' fast mode and cache."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "plate-ocr tests", "language": "python",
    }))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(root))
    mp.setenv("JUPYTER_PLATFORM_DIRS", "1")
    mp.setenv("PLATE_OCR_NB_FAST", "1")
    mp.setenv("PLATE_OCR_NB_CACHE", str(root / "cache"))
    mp.setenv("OMP_NUM_THREADS", "1")  # one torch thread: steady times on shared or busy cores
    yield root
    mp.undo()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean(name):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"{name}: clear the outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and code.index(params[0]) == 0, f"{name}: the first code cell holds the parameters"
    assert len(params[0].source.splitlines()) <= MAX_PARAMETER_LINES
    long = [c.source.splitlines()[0] for c in code[1:] if len(c.source.splitlines()) > MAX_CELL_LINES]
    assert not long, f"{name}: cells longer than {MAX_CELL_LINES} lines (move logic to analysis/): {long}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, kernel_env):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=300,
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    t0 = time.time()
    client.execute()  # raises CellExecutionError naming the cell on any error
    print(f"{name}: {time.time() - t0:.1f} s")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert images >= 3, f"{name}: expected plots, got {images} images"

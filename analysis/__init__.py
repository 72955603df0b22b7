"""Functions behind the notebooks in ``notebooks/``: dataset exploration, input size and
backbone choice, and analysis of a trained run.

The notebooks only call these functions and plot; everything here is plain, typed Python
tested by ``tests/test_analysis.py``.

- :mod:`analysis.common`  -- the cache folder, the default synthetic dataset
- :mod:`analysis.eda`     -- scan a dataset (raw labels included), counts, sizes, duplicates
- :mod:`analysis.sizing`  -- input size proposal, CTC feasibility, latency, short trainings
- :mod:`analysis.results` -- a run's predictions, confusions, confidence thresholds, curves
- :mod:`analysis.plots`   -- the few plots that take more than one line
"""

import warnings

# tqdm.auto (imported by timm's hub code and by training) warns in a kernel without ipywidgets.
warnings.filterwarnings("ignore", message="IProgress not found")

"""benchmarks/before_after.py: its --set parsing and its table (val.py itself is tested elsewhere)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from before_after import parse_set, table  # noqa: E402


def test_parse_set_takes_title_folder_and_an_optional_equivalence():
    assert parse_set("dev=../shared/realplates-dev:US:O=0") == ("dev", "../shared/realplates-dev", "US:O=0")
    assert parse_set("held-out plates=split/test") == ("held-out plates", "split/test", None)
    with pytest.raises(argparse.ArgumentTypeError, match="TITLE=FOLDER"):
        parse_set("split/test")


def test_table_lists_each_set_and_the_countries_asked_for():
    def result(em, cer, countries):
        return {"overall": {"n": 10, "exact_match": em, "cer": cer},
                "by_country": {c: {"n": 5, "exact_match": v, "cer": 0.1} for c, v in countries.items()}}

    sets = [("dev", "d", "US:O=0"), ("synth", "s", None)]
    results = {"before": [result(0.5, 0.2, {"BR": 0.4, "US": 0.6}), result(0.9, 0.01, {})],
               "after": [result(0.7, 0.1, {"BR": 0.8}), result(0.8, 0.02, {})]}
    lines = table(sets, results, {"dev"}).splitlines()
    assert lines[2] == "| dev (d, --equiv US:O=0) | 10 | 50.00% | 70.00% | 20.00% | 10.00% |"
    assert lines[3] == "| &nbsp;&nbsp;BR | 5 | 40.00% | 80.00% | 10.00% | 10.00% |"
    assert lines[4] == "| &nbsp;&nbsp;US | 5 | 60.00% | - | 10.00% | - |"  # not read after: said, not a crash
    assert lines[5] == "| synth (s) | 10 | 90.00% | 80.00% | 1.00% | 2.00% |"
    assert len(lines) == 6

"""benchmarks/keep_rule.py on hand-made benchmarks/real_plates.py outputs."""

from __future__ import annotations

import json

import pytest

from benchmarks import keep_rule


def write_run(path, exact: dict[str, float], cer: float = 0.1):
    """A real_plates.py --out file with these exact-match figures per set (macro = their mean)."""
    sets = {name: {"n": 10, "exact_match": v, "cer": cer, "by_country": {}} for name, v in exact.items()}
    macro = sum(exact.values()) / len(exact)
    path.write_text(json.dumps({"reader": "r", "sets": sets, "macro": {"exact_match": macro, "cer": cer},
                                "worst": {}}))
    return str(path)


def runs(tmp_path, tag, *figures):
    return [write_run(tmp_path / f"{tag}{i}.json", f) for i, f in enumerate(figures)]


def verdict_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_keep_when_the_macro_rises_past_the_spread_and_no_set_falls(tmp_path, capsys):
    base = runs(tmp_path, "a", {"dev": 0.5, "fin": 0.25}, {"dev": 0.5, "fin": 0.375})
    change = runs(tmp_path, "b", {"dev": 0.5, "fin": 0.625}, {"dev": 0.5, "fin": 0.5})
    result = keep_rule.main(["--base", *base, "--change", *change])
    assert result["keep"]
    rows = result["rows"]
    assert rows["fin"] == {"base": 0.3125, "change": 0.5625, "spread": 0.125, "delta": 0.25}
    assert rows["macro"]["spread"] == pytest.approx(0.0625) and rows["macro"]["delta"] == pytest.approx(0.125)
    out = capsys.readouterr().out
    assert "| fin | 31.25% | 56.25% | 12.50% | +25.00% |" in out
    assert out.strip().splitlines()[-1].startswith("keep: the macro mean rises by +12.50%")


def test_reject_when_the_macro_rises_no_more_than_the_spread(tmp_path, capsys):
    # The macro rises by exactly its spread (0.125): not more, so rejected.
    base = runs(tmp_path, "a", {"dev": 0.5, "fin": 0.5}, {"dev": 0.5, "fin": 0.25})
    change = runs(tmp_path, "b", {"dev": 0.625, "fin": 0.625}, {"dev": 0.625, "fin": 0.375})
    result = keep_rule.main(["--base", *base, "--change", *change])
    assert result["rows"]["macro"]["delta"] == result["rows"]["macro"]["spread"] == 0.125
    assert not result["keep"]
    assert verdict_line(capsys).startswith("reject: the macro mean moves by +12.50%: it does not rise")


def test_reject_when_a_set_falls_by_more_than_its_spread(tmp_path, capsys):
    base = runs(tmp_path, "a", {"dev": 0.75, "fin": 0.25, "id": 0.5}, {"dev": 0.75, "fin": 0.25, "id": 0.5})
    change = runs(tmp_path, "b", {"dev": 0.625, "fin": 0.75, "id": 0.5}, {"dev": 0.625, "fin": 0.75, "id": 0.5})
    result = keep_rule.main(["--base", *base, "--change", *change])
    assert result["rows"]["macro"]["delta"] > result["rows"]["macro"]["spread"]  # the macro alone would keep it
    assert not result["keep"]
    assert verdict_line(capsys) == "reject: dev gets worse by 12.50%, more than its seed spread 0.00%"


def test_cer_lower_is_better(tmp_path):
    base = [write_run(tmp_path / f"a{i}.json", {"dev": 0.5}, cer=c) for i, c in enumerate((0.25, 0.3))]
    change = [write_run(tmp_path / f"b{i}.json", {"dev": 0.5}, cer=c) for i, c in enumerate((0.1, 0.125))]
    kept = keep_rule.main(["--base", *base, "--change", *change, "--metric", "cer"])
    assert kept["keep"] and kept["reason"].startswith("the macro mean CER falls by -16.25%")
    rejected = keep_rule.main(["--base", *change, "--change", *base, "--metric", "cer"])
    assert not rejected["keep"] and "it does not fall by more than" in rejected["reason"]


def test_bad_input_names_the_file(tmp_path, capsys):
    good = runs(tmp_path, "a", {"dev": 0.5}, {"dev": 0.5})
    other = runs(tmp_path, "c", {"fin": 0.5}, {"fin": 0.5})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"sets": {"dev": {"n": 1}}}))
    for files, message in (([str(broken), good[0]], "broken.json: not JSON"),
                           ([str(wrong), good[0]], "wrong.json: not a benchmarks/real_plates.py --out file"),
                           ([str(tmp_path / "none.json"), good[0]], "none.json: cannot read")):
        with pytest.raises(SystemExit, match=message):
            keep_rule.main(["--base", *files, "--change", *good])
    with pytest.raises(SystemExit, match="different sets"):
        keep_rule.main(["--base", *good, "--change", *other])
    with pytest.raises(SystemExit):
        keep_rule.main(["--base", good[0], "--change", *good])  # one seed: no spread
    assert "--base needs two seeds or more" in capsys.readouterr().err

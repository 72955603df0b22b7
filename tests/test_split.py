"""data.split: parts that share no plate text, pointing at the original images."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from data.datasets import load_records
from data.split import assign_parts, main, part_shares, split_dataset


def make_dataset(root: Path, n_plates: int = 40) -> Path:
    """A labels.csv folder with 1-4 crops per plate, two countries, and spellings that normalise alike."""
    rng = np.random.default_rng(0)
    rows = []
    (root / "img").mkdir(parents=True)
    k = 0
    for p in range(n_plates):
        text = f"AB{p:03d}CD"
        country = "BR" if p % 3 else "DE"
        for c in range(int(rng.integers(1, 5))):
            spelling = [text, f"ab-{p:03d}-cd", f"AB {p:03d} CD"][c % 3]
            name = f"img/{k:04d}.png"
            cv2.imwrite(str(root / name), np.full((20, 60, 3), k % 255, np.uint8))
            rows.append(f"{name},{spelling},{country},1")
            k += 1
    # "lines": the old name of the rows column (still read; parts are written with "rows")
    (root / "labels.csv").write_text("filename,text,country,lines\n" + "\n".join(rows) + "\n")
    return root


def texts(folder: Path) -> list[str]:
    return [r.text for r in load_records(folder)]


def test_halves_share_no_plate_and_point_at_the_original_images(tmp_path):
    src = make_dataset(tmp_path / "src")
    summary = split_dataset(src, tmp_path / "out", ratio=[0.5], seed=0)
    a, b = load_records(tmp_path / "out" / "train"), load_records(tmp_path / "out" / "test")
    assert not {r.text for r in a} & {r.text for r in b}
    original = {os.path.realpath(r.path): r.text for r in load_records(src)}
    got = {os.path.realpath(r.path): r.text for r in a + b}
    assert got == original  # every crop once, same (normalised) label, the original file
    n = len(original)
    assert abs(len(a) - n / 2) <= 0.15 * n
    for country in ("BR", "DE"):  # dealt out per country
        share = sum(r.country == country for r in a) / sum(c == country for c in
                                                           [r.country for r in a + b])
        assert 0.3 <= share <= 0.7
    # Paths in the CSVs are relative to the part's folder, and the files are not copied.
    header, first = (tmp_path / "out" / "train" / "labels.csv").read_text().splitlines()[:2]
    assert header == "filename,text,country,rows"
    assert first.startswith("../../src/img/")
    assert not list((tmp_path / "out").rglob("*.png"))
    saved = json.loads((tmp_path / "out" / "split.json").read_text())
    assert saved == summary and saved["parts"]["train"]["images"] == len(a)
    assert saved["parts"]["train"]["plates"] == len({r.text for r in a})


def test_three_parts_names_seed_and_absolute_paths(tmp_path):
    src = make_dataset(tmp_path / "src", n_plates=60)
    split_dataset(src, tmp_path / "s0", ratio=[0.6, 0.2], names=["tr", "va", "te"], seed=0, absolute=True)
    parts = {n: set(texts(tmp_path / "s0" / n)) for n in ("tr", "va", "te")}
    assert all(parts.values())
    assert not (parts["tr"] & parts["va"] or parts["tr"] & parts["te"] or parts["va"] & parts["te"])
    assert (tmp_path / "s0" / "va" / "labels.csv").read_text().splitlines()[1].startswith("/")

    split_dataset(src, tmp_path / "s0b", ratio=[0.6, 0.2], names=["tr", "va", "te"], seed=0)
    split_dataset(src, tmp_path / "s1", ratio=[0.6, 0.2], names=["tr", "va", "te"], seed=1)
    assert set(texts(tmp_path / "s0b" / "te")) == parts["te"]  # reproducible
    assert set(texts(tmp_path / "s1" / "te")) != parts["te"]


def test_assign_parts_by_image_ignores_text(tmp_path):
    records = load_records(make_dataset(tmp_path / "src"))
    by_text = assign_parts(records, [0.5, 0.5], seed=3)
    by_image = assign_parts(records, [0.5, 0.5], seed=3, by="image")
    groups: dict[str, set[int]] = {}
    for r, p in zip(records, by_text):
        groups.setdefault(r.text, set()).add(p)
    assert all(len(ps) == 1 for ps in groups.values())
    assert sorted(set(by_image)) == [0, 1]


def test_filename_format_input(tmp_path):
    src = tmp_path / "named"
    src.mkdir()
    for i, name in enumerate(["AB123_1.png", "AB123_2.png", "CD456.png", "EF789.png", "GH012.png"]):
        cv2.imwrite(str(src / name), np.full((10, 30, 3), i, np.uint8))
    split_dataset(src, tmp_path / "out", ratio=[0.5])
    a, b = texts(tmp_path / "out" / "train"), texts(tmp_path / "out" / "test")
    assert sorted(a + b) == ["AB123", "AB123", "CD456", "EF789", "GH012"]
    assert not set(a) & set(b)


def test_command_line_and_errors(tmp_path, capsys):
    src = make_dataset(tmp_path / "src", n_plates=10)
    assert main(["--data", str(src), "--out", str(tmp_path / "out"), "--ratio", "0.5", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "train:" in out and "plates" in out
    assert main(["--data", str(src), "--out", str(tmp_path / "x"), "--ratio", "0.7", "0.4"]) == 2
    assert "sum to < 1" in capsys.readouterr().err
    assert main(["--data", str(src), "--out", str(tmp_path / "x"), "--names", "a", "b", "c"]) == 2
    assert "--names" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    with pytest.raises(ValueError, match="between 0 and 1"):
        part_shares([1.5])
    assert part_shares([0.8, 0.1]) == pytest.approx([0.8, 0.1, 0.1])

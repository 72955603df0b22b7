"""Format (c) -> crop cache (format a): JSON and CSV, boxes and corner points, re-runs, errors."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from data import crops
from data.crops import CropError, build_crop_cache, cut_quad
from data.datasets import DatasetError, PlateDataset, load_records, read_image_rgb


def make_photo(path, h=120, w=200):
    """A grey photo with a white plate at x=40..140, y=50..80 that has a red left edge."""
    img = np.full((h, w, 3), 90, np.uint8)
    img[50:80, 40:140] = 255
    img[50:80, 40:45] = (0, 0, 255)  # BGR red
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "photos"
    make_photo(d / "a.jpg")
    make_photo(d / "sub" / "b.png")
    return d


PLATE_BOX = [40, 50, 100, 30]
PLATE_POINTS = [[40, 50], [140, 50], [140, 80], [40, 80]]


def test_json_boxes_and_points(tmp_path, photos):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps([
        {"image": "a.jpg", "country": "DE", "plates": [
            {"text": "b-ab 123", "box": PLATE_BOX},
            {"text": "XY9", "points": PLATE_POINTS, "country": "FR", "rows": 2},
        ]},
        {"image": "sub/b.png", "lines": 2, "plates": [{"text": "M*1", "box": PLATE_BOX}]},  # "lines": the old name
    ]))
    out = build_crop_cache(photos, ann, tmp_path / "cache", workers=1, margin=0.0, height=0)
    records = load_records(out, allow_mask=True)
    assert [(r.text, r.country, r.rows) for r in records] == [
        ("BAB123", "DE", 1), ("XY9", "FR", 2), ("M*1", "", 2)]  # no country given: no country label
    assert records[0].path.name == "000000_BAB123.png" and records[2].path.name == "000002.png"
    box_crop = read_image_rgb(records[0].path)
    quad_crop = read_image_rgb(records[1].path)
    assert box_crop.shape == (30, 100, 3) and quad_crop.shape == (30, 100, 3)
    for crop in (box_crop, quad_crop):  # (a.jpg is lossy: approximate colours)
        assert np.abs(crop[15, 1].astype(int) - (255, 0, 0)).max() < 40  # the red left edge
        assert crop[15, 50].min() > 240
    with pytest.raises(DatasetError, match="evaluation only"):
        load_records(out)  # the masked label is for evaluation only


def test_csv_points_rectified_margin_height(tmp_path, photos):
    # A rotated/sheared quad: rectified to an upright crop.
    ann = tmp_path / "ann.csv"
    ann.write_text(
        "image,text,x1,y1,x2,y2,x3,y3,x4,y4,country,extra\n"
        "a.jpg,AB12,40,50,140,50,140,80,40,80,PL,zz\n"
        "sub/b.png,CD34,30,40,150,44,148,90,32,86,,\n"
    )
    out = build_crop_cache(photos, ann, tmp_path / "cache", workers=2, margin=0.1, height=32)
    records = load_records(out)
    assert [(r.text, r.country) for r in records] == [("AB12", "PL"), ("CD34", "")]
    first = read_image_rgb(records[0].path)
    assert first.shape[0] == 32 and abs(first.shape[1] - round(120 * 32 / 36)) <= 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == 2 and manifest["height"] == 32


@pytest.mark.parametrize("rows_column", ["rows", "lines"])  # "lines": the old name, still read
def test_csv_boxes_and_rerun_skips(tmp_path, photos, rows_column):
    ann = tmp_path / "ann.csv"
    ann.write_text(f"image,text,x,y,w,h,{rows_column}\na.jpg,AB12,40,50,100,30,1\nsub/b.png,CD34,40,50,100,30,2\n")
    out = build_crop_cache(photos, ann, tmp_path / "cache", workers=1, margin=0.05, height=0)
    assert [r.rows for r in load_records(out)] == [1, 2]
    assert (out / "labels.csv").read_text().splitlines()[0] == "filename,text,country,rows"
    assert read_image_rgb(load_records(out)[0].path).shape == (34, 110, 3)  # 5% margin each side
    labels = out / "labels.csv"
    mtime = labels.stat().st_mtime_ns
    os.utime(labels, ns=(mtime - 10**9, mtime - 10**9))
    before = labels.stat().st_mtime_ns
    build_crop_cache(photos, ann, out, workers=1, margin=0.05, height=0)
    assert labels.stat().st_mtime_ns == before  # skipped
    build_crop_cache(photos, ann, out, workers=1, margin=0.1, height=0)  # other settings: rebuilt
    assert labels.stat().st_mtime_ns != before
    assert read_image_rgb(load_records(out)[0].path).shape == (36, 120, 3)
    # A changed annotation file rebuilds too; no temp folders are left behind.
    ann.write_text("image,text,x,y,w,h\na.jpg,ZZ1,40,50,100,30\n")
    build_crop_cache(photos, ann, out, workers=1, margin=0.1, height=0)
    assert [r.text for r in load_records(out)] == ["ZZ1"]
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []


def test_command_line(tmp_path, photos, capsys):
    ann = tmp_path / "ann.csv"
    ann.write_text("image,text,x,y,w,h\na.jpg,AB12,40,50,100,30\n")
    args = ["--images", str(photos), "--annotations", str(ann), "--out", str(tmp_path / "c"), "--workers", "1"]
    assert crops.main(args) == 0
    assert "1 crops (built" in capsys.readouterr().out
    assert crops.main(args) == 0
    assert "up to date" in capsys.readouterr().out
    ds = PlateDataset(load_records(tmp_path / "c"))
    assert ds[0]["image"].shape == (64, 207, 3)  # 110x34 with the 5% margin, to height 64


@pytest.mark.parametrize(
    "content, match",
    [
        ("image,text,x,y,w,h\na.jpg,AB1,1,2,3,4\na.jpg,AB2,1,2,zz,4\n", r"ann\.csv, line 3 \(data row 2\), column 'w': not a number"),
        ("image,text,x,y,w,h\na.jpg,,1,2,3,4\n", r"line 2 \(data row 1\), column 'text': empty label"),
        ("image,text,x,y,w,h\na.jpg,AB1,1,2,0,4\n", r"line 2 \(data row 1\): box width and height must be positive"),
        ("image,text,x,y,w,h,country\na.jpg,AB1,1,2,3,4,Q1\n", r"column 'country': 'Q1' is not a country code"),
        ("image,text,x,y\na.jpg,AB1,1,2\n", r"line 1 \(header\): need columns x,y,w,h"),
        ("image,text,x,y,w,h\nmissing.jpg,AB1,1,2,3,4\n", r"line 2 \(data row 1\): photo not found: .*missing\.jpg"),
        ("image,text,x,y,w,h\na.jpg,AB1,500,500,3,4\n", r"line 2 \(data row 1\): box .* outside .*a\.jpg"),
        ("image,text,x1,y1,x2,y2,x3,y3,x4,y4\na.jpg,AB1,40,50,40,80,140,80,140,50\n", r"counter-clockwise"),
    ],
)
def test_csv_bad_rows(tmp_path, photos, content, match):
    ann = tmp_path / "ann.csv"
    ann.write_text(content)
    with pytest.raises(CropError, match=match):
        build_crop_cache(photos, ann, tmp_path / "cache", workers=1)
    assert not (tmp_path / "cache").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "entries, match",
    [
        ([{"image": "a.jpg", "plates": [{"text": "AB1"}]}], r"entry 1 \(image 'a\.jpg'\), plate 1: needs 'box'"),
        ([{"image": "a.jpg", "plates": [{"text": "AB1", "box": PLATE_BOX}, {"text": "AB1", "points": [[1, 2]]}]}],
         r"entry 1 \(image 'a\.jpg'\), plate 2, field 'points'"),
        ([{"plates": []}, {"image": "a.jpg"}], r"entry 2 \(image 'a\.jpg'\), field 'plates'"),
        ([{"image": "a.jpg", "plates": [{"text": "AB1", "box": PLATE_BOX, "rows": 3}]}], r"plate 1, column 'rows'"),
        ([{"image": "a.jpg", "plates": [{"text": "AB1", "box": PLATE_BOX, "lines": 3}]}], r"plate 1, column 'lines'"),
        ([{"image": "a.jpg", "rows": 2, "plates": [{"text": "AB1", "box": PLATE_BOX, "lines": 1}]}],
         r"plate 1, columns 'rows' \(2\) and 'lines' \(1, its old name\) disagree"),
    ],
)
def test_json_bad_entries(tmp_path, photos, entries, match):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(entries))
    with pytest.raises(CropError, match=match):
        build_crop_cache(photos, ann, tmp_path / "cache", workers=1)


def test_corrupt_photo_and_foreign_out_dir(tmp_path, photos):
    (photos / "bad.jpg").write_bytes(b"garbage")
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps([{"image": "bad.jpg", "plates": [{"text": "AB1", "box": PLATE_BOX}]}]))
    with pytest.raises(CropError, match=r"entry 1 \(image 'bad\.jpg'\), plate 1: .*bad\.jpg: cannot decode"):
        build_crop_cache(photos, ann, tmp_path / "cache", workers=2)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    ann.write_text(json.dumps([{"image": "a.jpg", "plates": [{"text": "AB1", "box": PLATE_BOX}]}]))
    with pytest.raises(CropError, match="not a crop cache"):
        build_crop_cache(photos, ann, foreign, workers=1)
    assert (foreign / "keep.txt").exists()


def test_cut_quad_rectifies_perspective():
    img = np.zeros((100, 200, 3), np.uint8)
    quad = np.array([[50, 30], [150, 20], [150, 70], [50, 60]], np.int32)
    cv2.fillConvexPoly(img, quad, (255, 255, 255))
    crop = cut_quad(img, tuple(map(tuple, quad.astype(float))), margin=0.0)
    assert crop.shape[:2] == (50, 100)  # longest edges: 100.5 and 50
    assert crop[2:-2, 2:-2].min() > 200  # the whole plate, nothing around it

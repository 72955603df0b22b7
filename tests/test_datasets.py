"""Dataset formats (a) and (b), image loading, the torch datasets, collate and the check command."""

from __future__ import annotations

import itertools
import os

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data import check
from data.datasets import (
    DatasetError,
    ImageReadError,
    PlateDataset,
    PlateRecord,
    SyntheticPlateDataset,
    collate_plates,
    label_from_filename,
    load_dataset,
    load_records,
    read_csv_dataset,
    read_filename_dataset,
    read_image_rgb,
    stream_seed,
)
from data.text import Charset
from data.transforms import build_transform


def write_png(path, h=20, w=60, value=None, channels=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(str(path))) % 2**32)
    shape = (h, w) if channels == 1 else (h, w, channels)
    img = rng.integers(0, 256, shape, dtype=np.uint8) if value is None else np.full(shape, value, np.uint8)
    assert cv2.imwrite(str(path), img)
    return path


def make_csv_dataset(root, rows, header="filename,text,country,rows", images=None):
    root.mkdir(parents=True, exist_ok=True)
    for name in images if images is not None else [r.split(",")[0] for r in rows]:
        write_png(root / name)
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


# --------------------------------------------------------------------------- format (a)


@pytest.mark.parametrize("rows_column", ["rows", "lines"])  # "lines": its old name, in every older set
def test_csv_dataset_reads_and_normalises(tmp_path, rows_column):
    root = make_csv_dataset(
        tmp_path / "a",
        ["img/1.png,ab-123 cd,de,1", "img/2.png,АВ123,ru,2", "img/3.png,XY9,,", "img/4.png,Z1,unknown,1"],
        header=f"filename,text,country,{rows_column}",
    )
    records, stats = read_csv_dataset(root)
    assert [r.text for r in records] == ["AB123CD", "AB123", "XY9", "Z1"]
    assert [r.country for r in records] == ["DE", "RU", "", "unknown"]  # empty: no label; "unknown": a label
    assert [r.rows for r in records] == [1, 2, 1, 1]
    assert records[0].path == root / "img/1.png"
    assert stats["rows"] == 4 and stats["skipped_invalid_label"] == 0
    assert load_records(root) == records
    assert load_records(root / "labels.csv") == records


def test_csv_minimal_columns_and_extras(tmp_path):
    root = make_csv_dataset(tmp_path / "a", ["x.png,AB1,ignored"], header="Filename,TEXT,notes")
    (r,) = load_records(root)
    assert (r.text, r.country, r.rows) == ("AB1", "", 1)  # no country column: no country label


@pytest.mark.parametrize("header", ["file,text", "filename,label"])
def test_csv_missing_column(tmp_path, header):
    root = make_csv_dataset(tmp_path / "a", ["x.png,AB1"], header=header)
    missing = "filename" if header.startswith("file,") else "text"
    with pytest.raises(DatasetError, match=rf"labels\.csv, line 1 \(header\): missing column '{missing}'"):
        read_csv_dataset(root)


def test_csv_empty_label(tmp_path):
    root = make_csv_dataset(tmp_path / "a", ["a.png,AB1,DE,1", "b.png, - ,DE,1"])
    with pytest.raises(DatasetError, match=r"labels\.csv, line 3 \(data row 2\), column 'text': empty label"):
        read_csv_dataset(root)


def test_csv_label_outside_charset_error_and_skip(tmp_path):
    root = make_csv_dataset(tmp_path / "a", ["a.png,AB1,DE,1", "b.png,AB$1,DE,1", "c.png,A*1,DE,1", "d.png,CD2,FR,1"])
    with pytest.raises(DatasetError, match=r"line 3 \(data row 2\), column 'text'.*'\$'"):
        read_csv_dataset(root)
    records, stats = read_csv_dataset(root, on_invalid_label="skip")
    assert [r.text for r in records] == ["AB1", "CD2"]
    assert stats["skipped_invalid_label"] == 2 and stats["rows"] == 4
    assert "b.png" not in str(records)
    # Masked labels: allowed for evaluation sets only.
    (tmp_path / "a" / "labels.csv").write_text("filename,text\na.png,AB1\nc.png,A*1\n")
    assert [r.text for r in read_csv_dataset(root, allow_mask=True)[0]] == ["AB1", "A*1"]
    with pytest.raises(DatasetError, match="evaluation only"):
        read_csv_dataset(root)


def test_csv_custom_charset(tmp_path):
    root = make_csv_dataset(tmp_path / "a", ["a.png,AB1", "b.png,Z9"], header="filename,text")
    records, stats = read_csv_dataset(root, charset=Charset("AB1"), on_invalid_label="skip")
    assert [r.text for r in records] == ["AB1"] and stats["skipped_invalid_label"] == 1


def test_csv_country_outside_the_generator(tmp_path):
    # A real set of another country (realplates-id: "ID") loads; its code is kept as given.
    root = make_csv_dataset(tmp_path / "a", ["a.png,AB1,DE,1", "b.png,AB2,id,1", "c.png,AB3,,1"])
    assert [r.country for r in read_csv_dataset(root)[0]] == ["DE", "ID", ""]


@pytest.mark.parametrize("value", ["12", "Germany", "D-E"])
def test_csv_bad_country(tmp_path, value):
    root = make_csv_dataset(tmp_path / "a", ["a.png,AB1,DE,1", f"b.png,AB2,{value},1"])
    with pytest.raises(DatasetError, match=r"line 3 \(data row 2\), column 'country': .* is not a country code"):
        read_csv_dataset(root, on_invalid_label="skip")


@pytest.mark.parametrize("column", ["rows", "lines"])
@pytest.mark.parametrize("value", ["3", "two", "0", "-1"])
def test_csv_bad_rows(tmp_path, value, column):
    root = make_csv_dataset(tmp_path / "a", [f"a.png,AB1,DE,{value}"], header=f"filename,text,country,{column}")
    with pytest.raises(DatasetError, match=rf"line 2 \(data row 1\), column '{column}': {column} must be 1 or 2"):
        read_csv_dataset(root)


def test_csv_rows_and_old_lines_column(tmp_path):
    """Both columns: equal values (or one cell empty) read; values that disagree name the file and row."""
    root = make_csv_dataset(tmp_path / "a", ["a.png,AB1,DE,2,2", "b.png,AB2,DE,,2", "c.png,AB3,DE,2,"],
                            header="filename,text,country,rows,lines")
    assert [r.rows for r in read_csv_dataset(root)[0]] == [2, 2, 2]
    root = make_csv_dataset(tmp_path / "b", ["a.png,AB1,1,DE,1", "b.png,AB2,1,DE,2"],
                            header="filename,text,lines,country,rows")
    with pytest.raises(DatasetError, match=r"labels\.csv, line 3 \(data row 2\), columns 'rows' \(2\) and 'lines' "
                                           r"\(1, its old name\) disagree"):
        read_csv_dataset(root)


def test_csv_missing_image(tmp_path):
    root = make_csv_dataset(tmp_path / "a", ["a.png,AB1,DE,1", "gone.png,AB2,DE,1"], images=["a.png"])
    with pytest.raises(DatasetError, match=r"line 3 \(data row 2\), column 'filename': image file not found: .*gone\.png"):
        read_csv_dataset(root)


def test_csv_large_lists_each_folder_once(tmp_path, monkeypatch):
    # Big sets stay fast because existence is checked against one listing per folder, not a
    # stat per row (a behaviour check; the speed itself is not timed in tests).
    import data.datasets as datasets

    root = tmp_path / "big"
    (root / "img").mkdir(parents=True)
    n = 2000
    for i in range(n):
        (root / "img" / f"{i}.png").touch()
    lines = ["filename,text,country,rows"] + [f"img/{i}.png,AB{i},DE,1" for i in range(n)]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    calls = {"listdir": 0, "isfile": 0}
    listdir, isfile = datasets.os.listdir, datasets.os.path.isfile

    def counted_listdir(path):
        calls["listdir"] += 1
        return listdir(path)

    def counted_isfile(path):
        calls["isfile"] += 1
        return isfile(path)

    monkeypatch.setattr(datasets.os, "listdir", counted_listdir)
    monkeypatch.setattr(datasets.os.path, "isfile", counted_isfile)
    records, stats = read_csv_dataset(root)
    assert len(records) == n == stats["rows"]
    assert calls["listdir"] == 1
    assert calls["isfile"] < 5  # the CSV itself, not every image


# --------------------------------------------------------------------------- format (b)


@pytest.mark.parametrize(
    "name, text",
    [
        ("AB123CD.jpg", "AB123CD"),
        ("AB-123-CD_2.png", "AB-123-CD"),
        ("00012_AB123CD.png", "AB123CD"),
        ("00012_AB123CD_7.png", "AB123CD"),
        ("00012_1234567.png", "1234567"),
        ("AB123 (2).png", "AB123"),
        ("AB123CD_154.png", "AB123CD"),
    ],
)
def test_label_from_filename(name, text):
    assert label_from_filename(name) == text


def test_filename_dataset(tmp_path):
    root = tmp_path / "b"
    for name in ["AB123CD.png", "sub/AB-123-CD_2.png", "sub/deep/00012_XY99.jpg", "notes.txt", ".hidden.png"]:
        write_png(root / name) if name.endswith(("png", "jpg")) else (root / name).write_text("x")
    records = load_records(root)
    assert sorted(r.text for r in records) == ["AB123CD", "AB123CD", "XY99"]
    assert all(r.country == "" and r.rows == 1 for r in records)
    write_png(root / "AB$12.png")
    with pytest.raises(DatasetError, match=r"AB\$12\.png"):
        read_filename_dataset(root)
    records, stats = read_filename_dataset(root, on_invalid_label="skip")
    assert len(records) == 3 and stats["skipped_invalid_label"] == 1


def test_load_records_detection_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_records(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no image files"):
        load_records(tmp_path / "empty")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"f\.txt: not a dataset"):
        load_records(tmp_path / "f.txt")
    other = tmp_path / "other"
    write_png(other / "AB1.png")
    (other / "train.csv").write_text("filename,text\nAB1.png,AB1\n")
    with pytest.raises(DatasetError, match=r"train\.csv"):
        load_records(other)
    assert [r.text for r in load_records(other / "train.csv")] == ["AB1"]
    assert [r.text for r in load_records(other, fmt="filename")] == ["AB1"]


# --------------------------------------------------------------------------- images


def test_image_modes_load_as_rgb(tmp_path):
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), np.full((10, 30), 200, np.uint8))
    rgba = tmp_path / "rgba.png"
    bgra = np.zeros((10, 30, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 255, 10, 128  # blue in BGR order
    cv2.imwrite(str(rgba), bgra)
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), np.full((10, 30, 3), 65535, np.uint16))
    deep_gray = tmp_path / "deep_gray.png"
    cv2.imwrite(str(deep_gray), np.full((10, 30), 256 * 100, np.uint16))
    from PIL import Image

    pal = tmp_path / "pal.png"
    im = Image.new("P", (30, 10))
    im.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    im.save(pal)
    for path, first_pixel in [(gray, (200, 200, 200)), (rgba, (10, 0, 255)), (deep, (255, 255, 255)),
                              (deep_gray, (100, 100, 100)), (pal, (255, 0, 0))]:
        img = read_image_rgb(path)
        assert img.shape == (10, 30, 3) and img.dtype == np.uint8, path
        assert tuple(int(v) for v in img[0, 0]) == first_pixel, path


def test_corrupt_image_named_on_getitem(tmp_path):
    root = make_csv_dataset(tmp_path / "a", ["good.png,AB1", "bad.png,AB2"], header="filename,text",
                            images=["good.png"])
    (root / "bad.png").write_bytes(b"\x89PNG garbage" + os.urandom(64))
    ds = PlateDataset(load_records(root), build_transform("eval", 32, 96))
    assert ds[0]["image"].shape == (3, 32, 96)
    with pytest.raises(ImageReadError, match=r"bad\.png"):
        ds[1]


def test_plate_dataset_items_and_collate(tmp_path):
    root = make_csv_dataset(tmp_path / "a", ["a.png,AB1,DE,1", "b.png,CD22,PL,2"])
    ds = PlateDataset(load_records(root), build_transform("eval", 32, 128))
    assert len(ds) == 2
    item = ds[1]
    assert set(item) == {"image", "text", "country", "rows"}
    assert (item["text"], item["country"], item["rows"]) == ("CD22", "PL", 2)
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate_plates)))
    assert batch["images"].shape == (2, 3, 32, 128) and batch["images"].dtype == torch.float32
    assert batch["texts"] == ["AB1", "CD22"] and batch["countries"] == ["DE", "PL"]
    assert batch["rows"].dtype == torch.long and batch["rows"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="different shapes"):
        collate_plates([{"image": torch.zeros(3, 8, 8), "text": "A", "country": "DE", "rows": 1},
                        {"image": torch.zeros(3, 8, 9), "text": "B", "country": "DE", "rows": 1}])
    # Init does no image I/O.
    PlateDataset([PlateRecord(tmp_path / "missing.png", "AB1", "DE", 1)], None)


# --------------------------------------------------------------------------- synthetic


def take(ds, n):
    it = iter(ds)
    return [next(it) for _ in range(n)]


def test_synthetic_dataset_deterministic_and_distinct():
    tf = build_transform("train", 32, 128)
    a = take(SyntheticPlateDataset(tf, seed=1), 3)
    b = take(SyntheticPlateDataset(build_transform("train", 32, 128), seed=1), 3)
    for x, y in zip(a, b):
        assert x["text"] == y["text"] and torch.equal(x["image"], y["image"])
    assert set(a[0]) == {"image", "text", "country", "rows"}
    assert a[0]["image"].shape == (3, 32, 128) and a[0]["image"].dtype == torch.float32
    other_seed = take(SyntheticPlateDataset(tf, seed=2), 3)
    other_rank = take(SyntheticPlateDataset(tf, seed=1, rank=1, world_size=2), 3)
    for other in (other_seed, other_rank):
        assert [s["text"] for s in other] != [s["text"] for s in a]
    assert len({stream_seed(0, r, w) for r in range(4) for w in range(4)}) == 16
    with pytest.raises(ValueError, match="rank"):
        SyntheticPlateDataset(tf, rank=2, world_size=2)


def test_synthetic_dataset_workers_distinct_and_reproducible():
    ds = SyntheticPlateDataset(build_transform("train", 32, 64), seed=3)

    def first_batches():
        loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_plates)
        it = iter(loader)
        out = [next(it), next(it)]  # one batch from worker 0, one from worker 1
        del it
        return out

    w0, w1 = first_batches()
    assert w0["texts"] != w1["texts"]
    again = first_batches()
    assert again[0]["texts"] == w0["texts"] and torch.equal(again[1]["images"], w1["images"])
    # Worker 0's stream is the stream of a single-process run with the same seed.
    assert [s["text"] for s in take(ds, 4)] == w0["texts"]


# --------------------------------------------------------------------------- check command


def test_check_command(tmp_path, capsys):
    root = make_csv_dataset(tmp_path / "a", ["a.png,AB1,DE,1", "b.png,CD2,FR,2", "c.png,EF3,,"])
    assert check.main([str(root)]) == 0
    out = capsys.readouterr().out
    assert "records: 3" in out and "3 readable, 0 unreadable" in out
    (root / "b.png").write_bytes(b"not an image")
    assert check.main([str(root), "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert "1 unreadable" in out and "b.png" in out
    (root / "labels.csv").write_text("filename,text\na.png,\n")
    assert check.main([str(root)]) == 2
    assert "empty label" in capsys.readouterr().err
    records, stats = load_dataset(root, on_invalid_label="skip")
    assert records == [] and stats["skipped_invalid_label"] == 1


# --------------------------------------------------------------------------- real + synthetic mixing


class _Real(torch.utils.data.Dataset):
    """Stand-in for a PlateDataset of real crops: items tagged with their index."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"image": None, "text": f"R{i}", "country": "unknown", "rows": 1, "real": i}


def _mixed(n_real=25, share=0.3, seed=0, rank=0, world_size=1):
    from data.datasets import MixedPlateDataset

    synth = SyntheticPlateDataset(None, seed=seed, rank=rank, world_size=world_size)
    return MixedPlateDataset(_Real(n_real), synth, share, seed=seed, rank=rank, world_size=world_size)


def test_mixed_stream_honours_the_synthetic_share_in_every_batch():
    items = list(itertools.islice(iter(_mixed(share=0.3)), 640))
    synthetic = [("real" not in it) for it in items]
    assert sum(synthetic) == 192  # 0.3 x 640: evenly spread, so exact over the stream
    for b in range(0, 640, 32):
        assert sum(synthetic[b:b + 32]) in (9, 10)  # and within one item in every batch of 32
    assert all(it["country"] != "unknown" for it, s in zip(items, synthetic) if s)  # generator plates
    real = [it["real"] for it in items if "real" in it]
    # Shuffled passes over the real crops: each pass shows every crop once.
    assert sorted(real[:25]) == list(range(25)) and sorted(real[25:50]) == list(range(25))
    assert real[:25] != list(range(25)) and real[:25] != real[25:50]
    assert all("real" in it for it in itertools.islice(iter(_mixed(share=0.0)), 50))  # 0: real only


def test_mixed_stream_is_seeded_and_rank_aware():
    def real_ids(ds, n=200):
        return [it.get("real") for it in itertools.islice(iter(ds), n)]

    assert real_ids(_mixed(seed=1)) == real_ids(_mixed(seed=1))
    assert real_ids(_mixed(seed=1)) != real_ids(_mixed(seed=2))
    # Two processes split each pass of the real crops between them (no crop twice per pass).
    r0 = [i for i in real_ids(_mixed(n_real=24, seed=1, rank=0, world_size=2), 17) if i is not None][:12]
    r1 = [i for i in real_ids(_mixed(n_real=24, seed=1, rank=1, world_size=2), 17) if i is not None][:12]
    assert sorted(r0 + r1) == list(range(24))
    # ... and draw different synthetic plates.
    s0 = [it["text"] for it in itertools.islice(iter(_mixed(seed=1, rank=0, world_size=2)), 40) if "real" not in it]
    s1 = [it["text"] for it in itertools.islice(iter(_mixed(seed=1, rank=1, world_size=2)), 40) if "real" not in it]
    assert s0 != s1


def test_mixed_stream_through_loader_workers_and_bad_shares():
    from data.datasets import MixedPlateDataset

    ds = _mixed(n_real=8, share=0.5)
    loader = DataLoader(ds, batch_size=8, num_workers=2, collate_fn=lambda s: s)
    batches = list(itertools.islice(iter(loader), 4))  # worker 0, worker 1, worker 0, worker 1
    assert all(sum("real" not in it for it in b) == 4 for b in batches)
    assert sorted(it["real"] for it in batches[0] + batches[1] if "real" in it) == list(range(8))
    synth = SyntheticPlateDataset(None)
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="synth_share"):
            MixedPlateDataset(_Real(3), synth, bad)
    with pytest.raises(ValueError, match="empty"):
        MixedPlateDataset(_Real(0), synth, 0.2)


def test_an_unreadable_image_in_a_loader_is_one_line_naming_it(tmp_path):
    """Even through a DataLoader worker (whose error carries the worker's traceback), the message
    comes back as one line naming the file and pointing to data.check (issue 26, item 7)."""
    from data.images import error_line

    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    cv2.imwrite(str(good), np.full((20, 60, 3), 128, np.uint8))
    bad.write_bytes(b"not an image")
    records = [PlateRecord(good, "AB1", "", 1), PlateRecord(bad, "AB2", "", 1)]
    loader = DataLoader(PlateDataset(records), batch_size=2, num_workers=1, collate_fn=lambda s: s)
    with pytest.raises(ImageReadError) as e:
        next(iter(loader))
    line = error_line(e.value)
    assert "\n" not in line and line.startswith(f"{bad}: cannot decode image") and "python -m data.check" in line
    # skip_unreadable: the item says why instead of raising
    item = PlateDataset(records, skip_unreadable=True)[1]
    assert item["image"] is None and item["unreadable"].startswith(f"{bad}: ") and item["text"] == "AB2"


def test_skipped_summary_counts_per_reason(tmp_path):
    from data.datasets import skipped_summary
    from data.text import Charset

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "labels.csv").write_text("filename,text\n0.png,AB1\n1.png,A$B\n2.png,\n")
    records, stats = load_dataset(tmp_path, Charset("AB0123456789"), on_invalid_label="skip")
    assert len(records) == 1
    line = skipped_summary(stats, "set")
    assert line.startswith("set: skipped 2 of 3 rows: 2 invalid label (empty, or characters outside the charset)")
    assert "line 3" in line  # the first example names its row
    assert skipped_summary(load_dataset(tmp_path, Charset("AB0123456789$"), on_invalid_label="skip")[1], "x") \
        == "x: skipped 1 of 3 rows: 1 invalid label (empty, or characters outside the charset); first: " \
           f"{tmp_path / 'labels.csv'}, line 4 (data row 3), column 'text': empty label (the cell is empty)"
    assert skipped_summary({"rows": 3, "records": 3, "skipped_invalid_label": 0, "skipped_examples": []}, "x") is None


def test_labels_from_file_names_are_said_and_names_unlike_plates_warned(tmp_path):
    from data.datasets import dataset_notes, label_source_notes, looks_like_plate

    assert looks_like_plate("AB123CD") and looks_like_plate("1234567")
    assert not any(map(looks_like_plate, ["CROP", "IMG1234", "FRAME12", "IMAGE7", "ABCDEF", ""]))
    plates, crops = tmp_path / "plates", tmp_path / "crops"
    for name in ["AB123CD.png", "XY99_2.png", "00012_crop.png"]:
        write_png(plates / name)
    for i in range(3):
        write_png(crops / f"crop_{i:04d}.png")
    write_png(crops / "AB12.png")
    _, stats = load_dataset(plates)
    assert (stats["unlike_plates"], stats["unlike_examples"]) == (1, ["00012_crop.png -> CROP"])
    assert label_source_notes(stats, plates) == [f"labels: from file names (no labels.csv in {plates})"]
    _, stats = load_dataset(crops)
    lines = dataset_notes(stats, crops)
    assert lines[0] == f"labels: from file names (no labels.csv in {crops})"
    assert lines[1].startswith(f"warning: 3 of 4 file names in {crops} do not look like plates "
                               "(e.g. crop_0000.png -> CROP, crop_0001.png -> CROP, crop_0002.png -> CROP)")
    # A CSV dataset: the labels are its text column, nothing to say.
    csv_root = make_csv_dataset(tmp_path / "a", ["a.png,AB1"])
    assert dataset_notes(load_dataset(csv_root)[1], csv_root) == []


def test_plate_bank_draws_each_plate_at_most_uses_times():
    from collections import Counter

    from data.synth.bank import BankSpec, PlateBank

    made = itertools.count()
    bank = PlateBank(lambda: next(made), BankSpec(size=16, uses=4), np.random.default_rng(0))
    drawn = Counter(bank() for _ in range(4000))
    assert max(drawn.values()) <= 4  # no plate serves more than `uses` samples
    assert bank.rendered == len(drawn) and 1000 <= bank.rendered <= 1016  # a quarter as many renders
    assert sum(n == 4 for n in drawn.values()) >= bank.rendered - 16  # all but the 16 in the bank served 4


def test_synthetic_stream_with_a_bank():
    from configs import ConfigError, load_config
    from data.synth.bank import BankSpec

    tf = build_transform("train", 32, 128)
    items = take(SyntheticPlateDataset(tf, seed=1, bank=BankSpec(size=4, uses=3)), 12)
    assert all(it["image"].shape == (3, 32, 128) for it in items)
    texts = [it["text"] for it in items]
    assert len(set(texts)) < len(texts)  # plates repeat (at most 3 times each), each augmented anew
    assert max(texts.count(t) for t in texts) <= 3
    with pytest.raises(ConfigError, match="data.synth_bank_uses"):
        load_config(path="configs/crnn.yaml", overrides=["data.synth_bank_uses=0"])

"""evaluation.evaluate: one loop for readers and bare models, formats by label, records, gathering."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from data.datasets import ImageReadError, PlateDataset, collate_plates, load_records
from evaluation import EvalResult, IndexedDataset, ModelReader, ReadingRecord, collate_indexed, evaluate
from inference import load_reader
from metrics import PlateMetrics
from models import PlateRecognizer
from models.base import PlatePrediction
from tests._inference_fixtures import make_plates, make_tiny_model

SAMPLES = [{"image": torch.full((3, 4, 8), float(i)), "text": text, "country": country, "rows": rows}
           for i, (text, country, rows) in enumerate([("AB1", "DE", 1), ("CD2", "BR", 2), ("EF3", "FR", 1),
                                                      ("GH4", "BR", 1), ("IJ5", "DE", 2)])]


class Echo:
    """Reads sample i's label right when i is even, wrong when odd; records the countries it was given."""

    def __init__(self):
        self.countries = []

    def predict_tensor(self, images, countries=None):
        self.countries.append(countries)
        out = []
        for x in images:
            i = int(x[0, 0, 0])
            text = SAMPLES[i]["text"] if i % 2 == 0 else "ZZ"
            out.append(PlatePrediction(text, 0.1 * (i + 1), country="DE", rows=1))
        return out


def loader(batch_size=2):
    return DataLoader(IndexedDataset(SAMPLES), batch_size=batch_size, collate_fn=collate_indexed)


def test_records_in_loader_order_and_metrics_from_them():
    result = evaluate(Echo(), loader(), keep_records=True)
    assert isinstance(result, EvalResult)
    assert [r.index for r in result.records] == [0, 1, 2, 3, 4]
    first = result.records[1]
    assert first == ReadingRecord("ZZ", "CD2", "BR", 2, pytest.approx(0.2), "DE", 1, 1)
    expected = PlateMetrics()
    expected.update(result.records)
    assert result.metrics == expected.compute()
    assert result.metrics["overall"]["n"] == 5 and result.metrics["overall"]["exact_match"] == pytest.approx(3 / 5)
    assert result.metrics["rows"]["n"] == 5 and result.metrics["country"]["n"] == 5
    # Without keep_records only the metrics come back; without indices a record has none.
    plain = evaluate(Echo(), DataLoader(SAMPLES, batch_size=3, collate_fn=collate_plates))
    assert plain.records is None and plain.metrics == result.metrics
    kept = evaluate(Echo(), DataLoader(SAMPLES, batch_size=3, collate_fn=collate_plates), keep_records=True)
    assert all(r.index is None for r in kept.records)


def test_formats_by_label_passes_the_labelled_countries():
    echo = Echo()
    evaluate(echo, loader(5))
    assert echo.countries == [None]  # the reader's own setting
    evaluate(echo, loader(5), formats_by_label=True)
    assert echo.countries[-1] == ["DE", "BR", "FR", "BR", "DE"]
    evaluate(echo, loader(5), formats_by_label={"BR", "FR"})
    assert echo.countries[-1] == [None, "BR", "FR", "BR", None]
    evaluate(echo, loader(5), formats_by_label=set())
    assert echo.countries[-1] == [None] * 5


def test_equivalences_score_as_metrics_do():
    samples_us = [{**s, "country": "US", "text": s["text"].replace("1", "I")} for s in SAMPLES]

    class ReadsOne:
        def predict_tensor(self, images, countries=None):
            return [PlatePrediction("AB1", 1.0) for _ in images]

    dl = DataLoader(samples_us[:1], batch_size=1, collate_fn=collate_plates)
    assert evaluate(ReadsOne(), dl).metrics["overall"]["exact_match"] == 0.0
    assert evaluate(ReadsOne(), dl, equivalences={"US": {"I": "1"}}).metrics["overall"]["exact_match"] == 1.0


class TwoProcesses:
    """An accelerator of two processes whose peer read the same batch: gathering doubles each batch."""

    num_processes = 2
    is_local_main_process = True
    device = torch.device("cpu")

    def __init__(self):
        self.gathers = 0

    def gather_for_metrics(self, obj, use_gather_object=False):
        assert use_gather_object and all(isinstance(r, ReadingRecord) for r in obj)
        self.gathers += 1
        return list(obj) + list(obj)

    def unwrap_model(self, model):
        return model


def test_several_processes_gather_once_per_batch_and_score_what_was_gathered():
    acc = TwoProcesses()
    result = evaluate(Echo(), loader(2), acc, keep_records=True)
    assert acc.gathers == 3  # batches of 2, 2, 1
    assert result.metrics["overall"]["n"] == 10 and len(result.records) == 10
    assert [r.index for r in result.records] == [0, 1, 0, 1, 2, 3, 2, 3, 4, 4]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluation")
    return make_tiny_model(root / "tiny"), make_plates(root / "plates", n=7)


def test_a_bare_model_scores_as_its_reader(tiny):
    weights, plates = tiny
    reader = load_reader(weights)
    ds = PlateDataset(load_records(plates), reader.transform)
    dl = DataLoader(IndexedDataset(ds), batch_size=3, collate_fn=collate_indexed)
    by_reader = evaluate(reader, dl, keep_records=True)
    model = PlateRecognizer.from_pretrained(weights).train()
    by_model = evaluate(model, dl, keep_records=True)
    assert model.training  # put back in the mode it came in
    assert by_model.records == by_reader.records and by_model.metrics == by_reader.metrics
    with pytest.raises(ValueError, match="PlateReader"):
        evaluate(model, dl, formats_by_label=True)
    assert model.training
    assert ModelReader(model).device == torch.device("cpu")


def test_unreadable_images_are_left_out_and_listed(tmp_path):
    """score_records(skip_unreadable=True): unreadable images are not scored, they are listed, and a
    batch of unreadable images alone is an empty batch (issue 26, item 7)."""
    from evaluation import score_records

    plates = make_plates(tmp_path / "plates", n=4)
    records = load_records(plates)
    records[1].path.write_bytes(b"not an image")
    records[2].path.unlink()
    reader = load_reader(make_tiny_model(tmp_path / "tiny"))
    result = score_records(reader, records, batch_size=1, skip_unreadable=True, keep_records=True)
    assert result.metrics["overall"]["n"] == 2
    assert [r.index for r in result.records] == [0, 3]
    assert [u.split(":")[0] for u in result.unreadable] == [str(records[1].path), str(records[2].path)]
    with pytest.raises(ImageReadError):
        score_records(reader, records, batch_size=2)

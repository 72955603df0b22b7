"""Country/rows heads, the CRNN's row routing, two-row reading, and the classification metrics."""

import pytest
import torch

from data.synth import SyntheticPlateGenerator
from data.text import COUNTRIES, Charset
from data.transforms import build_transform
from metrics import ClassificationCounts, PlateMetrics, ReadingRecord, format_metrics_table
from models import InputSpec, create_model, list_models
from models.heads import (COUNTRY_CLASSES, IGNORE, PlateClassHead, RowRouter, classification_loss,
                          country_targets, has_country_labels, rows_side_by_side)

CHARSET = Charset()
SPEC = InputSpec(32, 96)
TINY = {
    "crnn": {"backbone": "resnet18", "backbone_stage": 2, "rnn_hidden_size": 64, "rnn_layers": 1, "dropout": 0.0},
    "attn": {"encoder_stage": 1, "d_model": 64, "dec_heads": 4, "max_label_length": 10},
}


def test_country_targets_ignore_eu_and_unknown_codes():
    t = country_targets(["DE", "EU", "unknown", "VN"])
    assert t.tolist() == [COUNTRIES.index("DE"), IGNORE, len(COUNTRIES), COUNTRIES.index("VN")]
    assert COUNTRY_CLASSES[-1] == "unknown" and len(COUNTRY_CLASSES) == 28
    assert has_country_labels(["unknown", "DE"]) and not has_country_labels(["unknown", "EU"])


def test_head_outputs_and_loss():
    head = PlateClassHead(16)
    out = head(torch.randn(4, 16, 3, 10))  # a feature map; tokens [B, N, C] work as well
    assert out["country_logits"].shape == (4, 28) and out["rows_logits"].shape == (4, 2)
    assert head(torch.randn(4, 30, 16))["country_logits"].shape == (4, 28)
    batch = {"countries": ["DE", "FR", "EU", "US"], "rows": torch.tensor([1, 2, 1, 2])}
    loss = classification_loss(out, batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    assert all(p.grad is not None for p in head.parameters())
    # The EU sample adds nothing to the country loss: same value without it.
    sub = {k: v[[0, 1, 3]] for k, v in out.items()}
    expected = classification_loss(sub, {"countries": ["DE", "FR", "US"], "rows": torch.tensor([1, 2, 2])})
    rows_eu = torch.nn.functional.cross_entropy(out["rows_logits"][[2]], torch.tensor([0]))
    rows_all = torch.nn.functional.cross_entropy(out["rows_logits"], batch["rows"] - 1)
    rows_sub = torch.nn.functional.cross_entropy(sub["rows_logits"], torch.tensor([0, 1, 1]))
    assert torch.allclose(loss - rows_all, expected - rows_sub, atol=1e-6)
    assert rows_eu > 0  # (rows of an EU plate still count)
    # No labels in the batch: no classification loss.
    assert classification_loss(out, {"texts": ["A"] * 4}) is None


def test_head_with_context_layers_mixes_tokens_before_pooling():
    torch.manual_seed(0)
    head = PlateClassHead(16, context_layers=1, heads=4)
    assert PlateClassHead(16).context is None
    tokens = torch.randn(3, 12, 16, requires_grad=True)
    out = head(tokens)
    assert out["country_logits"].shape == (3, 28) and head(torch.randn(2, 16, 3, 4))["rows_logits"].shape == (2, 2)
    # Each plate's output depends on its tokens only (no mixing across the batch) ...
    out["country_logits"][0].sum().backward()
    assert tokens.grad[0].abs().sum() > 0 and tokens.grad[1:].abs().sum() == 0
    # ... and every weight of the context layers is trained.
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.context.parameters())


def test_rows_side_by_side_puts_the_top_row_left():
    img = torch.zeros(1, 3, 32, 96)
    img[..., :16, :] = 1.0  # top half white, bottom half black
    out = rows_side_by_side(img)
    assert out.shape == img.shape
    assert torch.allclose(out[..., :48], torch.ones(1, 3, 32, 48))
    assert torch.allclose(out[..., 48:], torch.zeros(1, 3, 32, 48))
    assert RowRouter(32)(img).shape == (1, 2)


def test_rows_side_by_side_to_a_lower_height_keeps_each_row():
    img = torch.zeros(2, 3, 64, 96)
    img[..., :32, :] = 1.0
    out = rows_side_by_side(img, height=32)
    assert out.shape == (2, 3, 32, 96)
    assert torch.allclose(out[..., :48], torch.ones(2, 3, 32, 48))
    assert torch.allclose(out[..., 48:], torch.zeros(2, 3, 32, 48))


def test_crnn_read_height_reads_rows_at_full_resolution_with_the_same_weights():
    torch.manual_seed(0)
    small = create_model("crnn", TINY["crnn"], CHARSET, SPEC).eval()
    tall = create_model("crnn", {**TINY["crnn"], "read_height": 32}, CHARSET, InputSpec(64, 96)).eval()
    assert tall.sequence_length == small.sequence_length and tall.rnn_features_num == small.rnn_features_num
    tall.load_state_dict(small.state_dict())  # same shapes: a 32-pixel model loads as it is
    x = torch.rand(3, 3, 64, 96) * 2 - 1
    halved = (x[..., 0::2, :] + x[..., 1::2, :]) / 2  # what a 2x bilinear downscale is
    with torch.no_grad():
        one_row = tall(x, rows=torch.tensor([1, 1, 1]))
        assert torch.allclose(one_row["logits"], small(halved, rows=torch.tensor([1, 1, 1]))["logits"], atol=1e-4)
        assert torch.allclose(one_row["rows_logits"], small.router(halved), atol=1e-4)
        # A two-row plate: each half (32 rows of the input) is read, not a 16-pixel squeeze of it.
        two_row = tall(x, rows=torch.tensor([2, 2, 2]))["logits"]
        assert torch.allclose(two_row, small(rows_side_by_side(x, 32), rows=torch.tensor([1, 1, 1]))["logits"],
                              atol=1e-4)
        assert not torch.allclose(two_row, small(halved, rows=torch.tensor([2, 2, 2]))["logits"], atol=1e-3)
    with pytest.raises(ValueError, match="read_height"):
        create_model("crnn", {**TINY["crnn"], "read_height": 48}, CHARSET, SPEC)
    with pytest.raises(ValueError, match="read_height.*row_split"):
        create_model("crnn", {**TINY["crnn"], "read_height": 32, "row_split": False}, CHARSET, InputSpec(64, 96))
    with pytest.raises(ValueError, match="model.read_height"):
        create_model("crnn", {**TINY["crnn"], "read_height": 4}, CHARSET, InputSpec(64, 96))


def test_crnn_routes_by_label_in_training_and_by_router_at_inference():
    torch.manual_seed(0)
    model = create_model("crnn", TINY["crnn"], CHARSET, SPEC).eval()
    x = torch.rand(3, 3, 32, 96) * 2 - 1
    split = rows_side_by_side(x)
    with torch.no_grad():
        by_label = model(x, rows=torch.tensor([2, 1, 2]))["logits"]
        plain = model(x, rows=torch.tensor([1, 1, 1]))["logits"]
        of_split = model(split, rows=torch.tensor([1, 1, 1]))["logits"]
        assert torch.allclose(by_label[[0, 2]], of_split[[0, 2]], atol=1e-5)
        assert torch.allclose(by_label[1], plain[1], atol=1e-5)
        assert not torch.allclose(plain[0], of_split[0], atol=1e-3)
        # Inference: the router decides. Force it to say "two rows" for every plate.
        model.router.fc.bias.copy_(torch.tensor([-100.0, 100.0]))
        routed = model(x)
        assert torch.allclose(routed["logits"], of_split, atol=1e-5)
        assert [p.rows for p in model.decode(routed)] == [2, 2, 2]
    no_split = create_model("crnn", {**TINY["crnn"], "row_split": False}, CHARSET, SPEC)
    assert no_split.router is None and "rows_logits" not in no_split(x)


def two_row_batch(n: int, seed: int = 0) -> dict:
    gen = SyntheticPlateGenerator(seed=seed, two_row_prob=1.0, countries=["DE", "VN", "UA", "PL"])
    tf = build_transform("eval", SPEC.height, SPEC.width)
    plates = [gen() for _ in range(n)]
    assert all(p.rows == 2 for p in plates)
    return {"images": torch.stack([tf(p.image) for p in plates]), "texts": [p.text for p in plates],
            "countries": [p.country for p in plates], "rows": torch.tensor([p.rows for p in plates])}


@pytest.mark.parametrize("arch", list_models())
def test_two_row_plates_are_learnt_by_every_architecture(arch):
    """A tiny model fits a fixed batch of two-row plates: text (top row then bottom row), country, rows."""
    torch.manual_seed(0)
    batch = two_row_batch(4)
    model = create_model(arch, TINY[arch], CHARSET, SPEC)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = model.loss(model(batch["images"], batch["texts"], batch["rows"]), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    preds = model.predict(batch["images"])
    assert [p.text for p in preds] == batch["texts"]
    assert [p.country for p in preds] == batch["countries"]
    assert [p.rows for p in preds] == [2] * 4


def test_classification_counts_accuracy_and_macro_f1():
    c = ClassificationCounts()
    for t, p in [("DE", "DE"), ("DE", "AT"), ("AT", "AT"), ("FR", "FR")]:
        c.add(t, p)
    r = c.compute(order=COUNTRY_CLASSES)
    assert r["n"] == 4 and r["accuracy"] == 0.75
    # F1: DE (p 1, r .5) = 2/3, AT (p .5, r 1) = 2/3, FR = 1 -> macro (2/3 + 2/3 + 1) / 3
    assert r["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert r["confusion"]["labels"] == ["DE", "FR", "AT"]  # COUNTRY_CLASSES order
    assert r["confusion"]["matrix"] == [[1, 0, 1], [0, 1, 0], [0, 0, 1]]


def test_plate_metrics_per_country_and_rows_with_predicted_classes():
    m = PlateMetrics()
    m.update(ReadingRecord(t, lab, c, r, pred_country=pc, pred_rows=pr) for t, lab, c, r, pc, pr in zip(
        ["AB1", "X", "CD2", "Q9"], ["AB1", "Y", "CD2", "Q9"], ["DE", "DE", "EU", "VN"], [1, 1, 1, 2],
        ["DE", "AT", "DE", "VN"], [1, 1, 2, 2]))
    r = m.compute()
    assert r["country"]["n"] == 3  # the EU plate has no country class
    assert r["country"]["accuracy"] == pytest.approx(2 / 3)
    assert r["by_country"]["DE"]["country_accuracy"] == 0.5
    assert r["by_country"]["VN"]["country_accuracy"] == 1.0
    assert "country_accuracy" not in r["by_country"]["EU"]
    assert r["rows"]["n"] == 4 and r["rows"]["accuracy"] == 0.75
    assert r["by_rows"]["2"]["exact_match"] == 1.0 and r["by_rows"]["1"]["exact_match"] == pytest.approx(2 / 3)
    table = format_metrics_table(r)
    assert "country accuracy" in table and "| country | 3 | 66.67% |" in table
    # Without predicted classes there are no classification entries.
    plain = PlateMetrics()
    plain.update([ReadingRecord("A", "A", "DE", 1)])
    assert "country" not in plain.compute() and "rows" not in plain.compute()
    headless = PlateMetrics()  # a model without heads predicts None: scored as no predictions
    headless.update([ReadingRecord("A", "A", "DE", 1, pred_country=None, pred_rows=None)])
    assert "country" not in headless.compute() and "rows" not in headless.compute()


def test_plates_without_a_country_label_add_nothing_to_the_country_loss(tmp_path):
    """A fine-tuning set of filename,text rows (or empty country cells) is unlabelled for the
    country head: those plates are left out of the country loss, not trained as ``unknown``."""
    import cv2
    import numpy as np
    import torch.nn.functional as F

    from data.datasets import PlateDataset, collate_plates, load_records

    for name in "abcde":
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((8, 24, 3), 100, np.uint8))
    (tmp_path / "labels.csv").write_text(
        "filename,text,country\na.png,AB1,DE\nb.png,CD2,\nc.png,EF3,FR\nd.png,GH4\ne.png,IJ5,unknown\n")
    records = load_records(tmp_path)
    batch = collate_plates([PlateDataset(records)[i] for i in range(len(records))])
    assert batch["countries"] == ["DE", "", "FR", "", "unknown"]  # "unknown" is a label; "" is none
    torch.manual_seed(0)
    logits = PlateClassHead(16)(torch.randn(5, 16, 3, 10))["country_logits"]
    loss = classification_loss({"country_logits": logits}, batch)
    labelled = F.cross_entropy(logits[[0, 2, 4]], country_targets(["DE", "FR", "unknown"]))
    assert torch.allclose(loss, labelled)
    # A set without a country column: no country loss at all (and no country head by default).
    (tmp_path / "plain.csv").write_text("filename,text\na.png,AB1\nb.png,CD2\n")
    plain = load_records(tmp_path / "plain.csv")
    assert [r.country for r in plain] == ["", ""] and not has_country_labels([r.country for r in plain])
    assert classification_loss({"country_logits": logits[:2]}, {"countries": ["", ""]}).item() == 0.0


def test_country_scores_leave_out_unlabelled_plates_and_say_their_coverage():
    m = PlateMetrics()
    m.update(ReadingRecord("A1", "A1", c, 1, pred_country=pc) for c, pc in zip(
        ["DE", "", "FR", "", "ID"], ["DE", "unknown", "DE", "DE", "unknown"]))
    r = m.compute()
    c = r["country"]
    assert (c["n"], c["accuracy"], c["of"], c["coverage"]) == (2, 0.5, 5, 0.4)
    assert (c["unlabelled"], c["other_country"]) == (2, 1)
    assert c["confusion"]["labels"] == ["DE", "FR"]
    assert r["by_country"]["unlabelled"]["n"] == 2 and "country_accuracy" not in r["by_country"]["unlabelled"]
    table = format_metrics_table(r)
    assert ("Country scores cover 2 of 5 plates (40.00%); left out: 2 without a country label, "
            "1 labelled with a country the head has no class for.") in table
    # Every plate unlabelled: the scores say they cover none.
    none = PlateMetrics()
    none.update([ReadingRecord("A1", "A1", "", 1, pred_country="DE")])
    c = none.compute()["country"]
    assert (c["n"], c["of"], c["coverage"], c["unlabelled"]) == (0, 1, 0.0, 1) and c["accuracy"] != c["accuracy"]
    assert "cover 0 of 1 plates" in format_metrics_table(none.compute())

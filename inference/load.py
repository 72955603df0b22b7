"""Loading a reader for a weights path: :func:`load_reader` and :func:`load_joint_model`.

An ``.onnx`` file gives an :class:`~inference.onnx.OnnxPlateReader` without importing torch; a
model folder imports the PyTorch readers on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

from data.text import Charset
from inference.onnx import OnnxPlateReader
from inference.readers import PlateReader, check_polarity
from inference.weights import WeightsError, resolve_weights
from models.plate_formats import check_country

if TYPE_CHECKING:
    from inference.torch_readers import JointPlateReader


def check_beam_width(beam_width: int | None) -> None:
    if beam_width is not None and (isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1):
        raise WeightsError(f"beam_width must be an integer >= 1, got {beam_width!r}")


def _check_views(views: Sequence[str] | str) -> tuple[str, ...]:
    from data.transforms import check_reading_views  # albumentations: only when views are asked for

    return check_reading_views(views)


def load_reader(
    path: str | os.PathLike | None = None,
    *,
    device: Any = "cpu",
    batch_size: int = 64,
    threads: int | None = None,
    expected_arch: str | None = None,
    expected_charset: Charset | str | None = None,
    country: str | None = None,
    beam_width: int | None = None,
    views: Sequence[str] | str | None = None,
    polarity: str = "given",
) -> PlateReader:
    """A :class:`PlateReader` for a model folder (PyTorch) or an ``.onnx`` file (ONNX Runtime).

    ``path`` None means the shipped default, ``weights/crnn_ppocr``. ``expected_arch``
    / ``expected_charset`` refuse a model of another architecture or charset.
    ``threads`` applies to ONNX Runtime (intra-op threads); set PyTorch's with
    ``torch.set_num_threads``. Raises :class:`WeightsError` (a ValueError) with
    a message saying what is wrong. ``country`` reads every plate under that country's formats
    (``"auto"``: the country the model's head predicts; ``"any"``: every country's formats, each
    weighed by the head's probability for it; ``None`` or ``"none"``: off; see
    ``models/plate_formats.py``).
    ``beam_width`` replaces the decoding beam width (1: greedy) of a model with beam search (the
    attention model) for this reader. ``views`` (e.g. ``DEFAULT_READING_VIEWS``) reads each crop
    in those views and keeps the reading they score highest together (a :class:`JointPlateReader`
    over one model; model folders only). ``polarity="both"`` reads each crop as given and inverted
    and keeps the more confident reading; ``"auto"`` inverts the crops whose characters are light
    (``inference.readers.POLARITIES``; not with ``views``).
    """
    polarity = check_polarity(polarity)
    if country is not None:
        country = check_country(country, "country")
        country = None if country == "none" else country
    check_beam_width(beam_width)
    if views is not None:
        views = _check_views(views)
        if polarity != "given" and views != ("none",):
            raise ValueError(f"polarity={polarity!r} reads one view; it does not combine with views")
    kind, p = resolve_weights(path)
    if isinstance(expected_charset, str):
        expected_charset = Charset(expected_charset)
    if kind == "onnx":
        if beam_width is not None:
            raise WeightsError(f"{p}: beam_width applies to PyTorch model folders with beam search; an "
                               "exported graph decodes as it was exported (greedy)")
        reader: PlateReader = OnnxPlateReader(p, batch_size=batch_size, threads=threads)
    else:
        from inference.torch_readers import TorchPlateReader
        from models.base import PlateRecognizer

        try:
            model = PlateRecognizer.from_pretrained(p)
        except ValueError as e:
            raise WeightsError(str(e) if str(p) in str(e) else f"{p}: {e}") from e
        reader = TorchPlateReader(model, p, device=device, batch_size=batch_size)
        if beam_width is not None:
            reader.set_beam_width(beam_width)
    if expected_arch is not None and reader.arch != expected_arch:
        raise WeightsError(f"{p} holds a {reader.arch!r} model, expected {expected_arch!r}")
    if expected_charset is not None and reader.charset != expected_charset:
        raise WeightsError(
            f"{p} reads charset {reader.charset.chars!r}, which differs from the expected "
            f"{expected_charset.chars!r}"
        )
    reader.country = country
    reader.polarity = polarity
    if views is not None and views != ("none",):
        if kind == "onnx":
            raise WeightsError(f"{p}: reading with views scores texts with the PyTorch model; pass the "
                               "model folder, not an exported .onnx file")
        from inference.torch_readers import JointPlateReader

        return JointPlateReader([reader], views)
    return reader


def load_joint_model(paths: Sequence[str | os.PathLike], *, device: Any = "cpu",
                     batch_size: int = 64, country: str | None = None,
                     beam_width: int | None = None, views: Sequence[str] | str = ("none",)) -> JointPlateReader:
    """A :class:`JointPlateReader` over model folders and reading views (see there); errors name
    the folder. ``beam_width`` applies to the models with beam search among them."""
    from inference.torch_readers import JointPlateReader, TorchPlateReader

    check_beam_width(beam_width)
    views = _check_views(views)
    readers = [load_reader(p, device=device, batch_size=batch_size, country=country) for p in paths]
    if beam_width is not None:
        for r in readers:  # an ONNX reader has no model: JointPlateReader refuses it below
            if isinstance(r, TorchPlateReader) and r.model.capabilities.beam_search:
                r.set_beam_width(beam_width)
    return JointPlateReader(readers, views)

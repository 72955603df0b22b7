"""The reading options ``predict.py`` and ``val.py`` share: ``--joint``, ``--beam``, ``--polarity``, ``--tta``, and the
reader they describe.

    add_reader_args(parser)
    args = parser.parse_args()
    reader = reader_from_args(args, device="cpu", country=args.country)
"""

from __future__ import annotations

import argparse
from typing import Any

from data.transforms import DEFAULT_READING_VIEWS, READING_VIEWS, check_reading_views
from inference import DEFAULT_WEIGHTS, PlateReader, load_joint_model, load_reader
from inference.readers import POLARITIES


def _views(value: str) -> tuple[str, ...]:
    try:
        return check_reading_views(value, "--tta")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--tta: ")) from None


def add_reader_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--joint WEIGHTS``, ``--beam N``, ``--polarity given|both|auto`` and ``--tta [VIEWS]`` (parsed to a tuple of
    view names)."""
    parser.add_argument("--joint", default=None, metavar="WEIGHTS",
                        help="a second model folder reading with --weights: where the two readings differ, the "
                             "one with the higher summed log-probability under both models is kept "
                             "(inference.JointPlateReader)")
    parser.add_argument("--beam", type=int, default=None, metavar="N",
                        help="beam width of the attention model's decoding (1: greedy); default: the model's "
                             "own model.beam_width")
    parser.add_argument("--polarity", default="given", choices=POLARITIES,
                        help="'both': read each crop as given and inverted (light characters on dark) and keep "
                             "the more confident reading; twice the reading time. 'auto': invert the crops whose "
                             "characters are light, then read once (what a model trained with data.dark_text "
                             "does by itself). Not with --joint or --tta")
    parser.add_argument("--tta", nargs="?", type=_views, const=",".join(DEFAULT_READING_VIEWS), default=None,
                        metavar="VIEWS",
                        help="read each crop in several views (looser, tighter, contrast-stretched) and keep the "
                             "reading they score highest together; VIEWS: a comma list of "
                             f"{', '.join(READING_VIEWS)} (default: {','.join(DEFAULT_READING_VIEWS)}). Model "
                             "folders only; six to seven times the reading time with the five default views")


def reader_from_args(args: argparse.Namespace, device: Any, *, country: str | None = None,
                     batch_size: int = 64, threads: int | None = None) -> PlateReader:
    """The reader ``args.weights`` (None: the shipped default), ``--joint``, ``--beam`` and ``--tta`` describe.

    ``country`` reads under plate formats (a code or "auto"). Raises ``inference.WeightsError``
    (a ValueError) naming the weights at fault.
    """
    polarity = args.polarity
    if polarity != "given" and (args.joint or args.tta):
        raise ValueError(f"--polarity {polarity} reads one model in one view: not with --joint or --tta")
    if args.joint:
        return load_joint_model([args.weights or DEFAULT_WEIGHTS, args.joint], device=device,
                                batch_size=batch_size, country=country, beam_width=args.beam,
                                views=args.tta or ("none",))
    return load_reader(args.weights, device=device, batch_size=batch_size, threads=threads, country=country,
                       beam_width=args.beam, views=args.tta, polarity=polarity)

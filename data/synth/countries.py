"""How each country's plates look: colours, layouts and fonts (the renderer's side of a country).

Which texts a country's plates carry (formats, alphabets, pools) is domain knowledge, in
``data/formats.py``; each of its ``Fmt`` entries names one of the ``styles`` here. Everything
about a country's look is in its ``CountryLook`` entry in ``LOOKS`` at the bottom of this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

RGB = tuple[int, int, int]

# --- colours --------------------------------------------------------------------------
WHITE: RGB = (240, 241, 238)
BLACK: RGB = (22, 22, 24)
EU_BLUE: RGB = (0, 51, 153)
EU_YELLOW: RGB = (255, 204, 0)
NL_YELLOW: RGB = (247, 196, 12)
GB_YELLOW: RGB = (252, 208, 6)
FR_YELLOW: RGB = (246, 192, 22)
BR_GREY: RGB = (172, 174, 176)
BR_RED: RGB = (176, 30, 36)
BR_BLUE: RGB = (0, 52, 140)
BE_RED: RGB = (150, 18, 40)
NO_GREEN: RGB = (0, 106, 64)
VN_YELLOW: RGB = (250, 200, 20)
VN_BLUE: RGB = (28, 62, 150)
TAXI_YELLOW: RGB = (250, 204, 30)
AT_RED: RGB = (200, 16, 46)
# Car bodies around a plate (its corners, and the mounted plates of data.synth.effects).
CAR_COLOURS: tuple[RGB, ...] = (
    (28, 28, 30), (58, 60, 64), (110, 112, 116), (168, 170, 174), (214, 214, 216), (236, 236, 234),
    (24, 38, 84), (120, 22, 26), (38, 58, 44), (196, 190, 170), (70, 44, 30),
)
US_BG: tuple[RGB, ...] = ((238, 238, 236), (226, 234, 244), (244, 238, 214), (248, 244, 204), (232, 242, 232))
US_FG: tuple[RGB, ...] = ((22, 40, 112), (128, 20, 34), (22, 22, 24), (20, 86, 44), (160, 28, 28))

# --- plate proportions (width / height) ------------------------------------------------
EU = 520 / 110
SQUARE = 280 / 200


@dataclass(frozen=True)
class Style:
    """How a plate of one format looks. Colours are choices (repeat one to weight it)."""

    bg: tuple[RGB, ...] = (WHITE,)
    fg: tuple[RGB, ...] = (BLACK,)
    band: str | None = None  # text of the left band ("D", "PL", "UA"); None: no band
    band_kind: str = "eu"  # eu | ua | no | by | kz | gb
    band_prob: float = 1.0  # probability that the band is there (GB: optional)
    decor: tuple[str, ...] = ()  # fr_right it_right at_stripes mercosul br_city us_state ch_shields
    box: str = "ru"  # look of the '#' box: ru (RUS + flag under the region) | kz (plain)
    emblem: str = "seals"  # what '~' draws: seals | at | hr | sk
    emblem_text: str = " "  # how '~' is written in the rendered text
    aspect: float = EU  # one-row plate
    aspect2: float = SQUARE  # two-row plate
    border: float = 1.0  # border thickness factor (0: none)
    text_h: tuple[float, float] = (0.56, 0.7)  # cap height / plate height of a one-row plate
    # The same with the realism effects on, where the real plates' characters are smaller than the
    # classic renders' (which the fixed val/test sets keep); None: text_h.
    real_text_h: tuple[float, float] | None = None


@dataclass(frozen=True)
class CountryLook:
    code: str
    styles: dict[str, Style] = field(default_factory=lambda: {"std": Style()})  # by Fmt.style
    fonts: tuple[str, ...] = ("din", "narrow")  # font groups (data.synth.fonts.FONT_GROUPS)


# --- styles shared by many countries ----------------------------------------------------------


def eu(band: str, **kw) -> dict[str, Style]:
    """The one-style table of a plain EU plate: white, black text, blue band with ``band``."""
    return {"std": Style(band=band, **kw)}


US_STYLE = Style(bg=US_BG, fg=US_FG, decor=("us_state",), aspect=2.0, border=0.7, text_h=(0.42, 0.54))


# --- the table (one entry per country, in COUNTRIES order) --------------------------------------
_LOOKS: tuple[CountryLook, ...] = (
    CountryLook(
        "DE",
        styles={"std": Style(band="D", emblem="seals", emblem_text="-", aspect2=1.75)},
        fonts=("din",),
    ),
    CountryLook(
        "FR",
        styles={
            "std": Style(band="F", decor=("fr_right",), aspect2=210 / 130),
            "fni": Style(bg=(WHITE, FR_YELLOW), aspect2=210 / 130),
            "fni_black": Style(bg=(BLACK,), fg=((215, 215, 210),), border=0.0),
        },
        fonts=("din", "narrow"),
    ),
    CountryLook(
        "IT",
        styles={
            "std": Style(band="I", decor=("it_right",), aspect=360 / 110, aspect2=1.3, text_h=(0.54, 0.64)),
            "old": Style(aspect=3.6, border=0.6),
        },
    ),
    CountryLook("ES", styles={"std": Style(band="E"), "old": Style(border=0.8)}),
    CountryLook(
        "PL",
        styles={"std": Style(band="PL"), "old": Style(bg=(BLACK,), fg=((228, 228, 224),), border=0.6, aspect=4.2)},
    ),
    CountryLook(
        "NL",
        styles={"std": Style(bg=(NL_YELLOW,), band="NL")},
        fonts=("din", "narrow"),
    ),
    CountryLook("BE", styles={"std": Style(fg=(BE_RED,), band="B")}),
    CountryLook(
        "AT",
        styles={"std": Style(band="A", decor=("at_stripes",), emblem="at", emblem_text=" ", aspect=520 / 120)},
    ),
    CountryLook(
        "CH",
        styles={
            "std": Style(aspect=500 / 110),
            "rear": Style(aspect=500 / 110, decor=("ch_shields",), aspect2=300 / 160),
        },
    ),
    CountryLook(
        "GB",
        styles={"std": Style(bg=(WHITE, GB_YELLOW), band="UK", band_kind="gb", band_prob=0.4)},
        fonts=("narrow", "din"),
    ),
    CountryLook("CZ", styles={"std": Style(band="CZ"), "old": Style(border=0.7)}),
    CountryLook("SK", styles={"std": Style(band="SK", emblem="sk", emblem_text="-")}),
    CountryLook("HR", styles={"std": Style(band="HR", emblem="hr", emblem_text=" ")}),
    CountryLook("SE", styles=eu("S")),
    CountryLook("FI", styles={"std": Style(band="FIN", aspect=442 / 118, border=1.4)}),
    CountryLook(
        "NO",
        styles={
            "std": Style(band="N", band_kind="no"),
            "ev": Style(band="N", band_kind="no", fg=(NO_GREEN,)),
        },
    ),
    CountryLook("LT", styles=eu("LT")),
    CountryLook("LV", styles=eu("LV")),
    CountryLook("EE", styles=eu("EST")),
    CountryLook("RO", styles=eu("RO")),
    CountryLook(
        "RU",
        styles={
            "std": Style(aspect=520 / 112, aspect2=290 / 170, box="ru"),
            "taxi": Style(bg=(TAXI_YELLOW,), aspect=520 / 112, box="ru"),
        },
        fonts=("din", "mono"),
    ),
    CountryLook(
        "UA",
        styles={
            "std": Style(band="UA", band_kind="ua", aspect=520 / 112),
            "old": Style(band="UA", band_kind="ua_old", aspect=520 / 112),
        },
        fonts=("din", "mono"),
    ),
    CountryLook(
        "BY",
        styles={"std": Style(band="BY", band_kind="by", aspect=520 / 112)},
        fonts=("din", "mono"),
    ),
    CountryLook(
        "KZ",
        styles={
            "std": Style(band="KZ", band_kind="kz", box="kz", aspect=520 / 112),
            "old": Style(aspect=520 / 112, border=0.8),
        },
        fonts=("din", "mono"),
    ),
    CountryLook(
        "US",
        styles={
            "std": US_STYLE,
            "tab": replace(US_STYLE, decor=("us_state", "us_tab")),  # Missouri: a tab between the groups
        },
        fonts=("narrow", "mono", "din"),
    ),
    CountryLook(
        "BR",
        styles={
            "mercosul": Style(fg=(BLACK,) * 12 + (BR_RED, BR_BLUE, NO_GREEN), decor=("mercosul",),
                              aspect=400 / 130, aspect2=200 / 170),
            # Real grey plates: 63 mm characters on a 130 mm plate, below the city strip.
            "old": Style(bg=(BR_GREY,), decor=("br_city",), aspect=400 / 130, aspect2=187 / 136,
                         real_text_h=(0.42, 0.54)),
            "old_red": Style(bg=(BR_RED,), fg=(WHITE,), decor=("br_city",), aspect=400 / 130,
                             real_text_h=(0.42, 0.54)),
        },
        fonts=("mono", "din"),
    ),
    CountryLook(
        "VN",
        styles={
            "std": Style(bg=(WHITE, WHITE, WHITE, WHITE, VN_YELLOW), aspect=520 / 110, aspect2=330 / 165,
                         border=1.3),
            "com": Style(bg=(WHITE, VN_YELLOW), aspect=520 / 110, aspect2=330 / 165, border=1.3),
            "gov": Style(bg=(VN_BLUE,), fg=(WHITE,), aspect=520 / 110, aspect2=330 / 165, border=1.3),
        },
        fonts=("narrow", "din"),
    ),
)

LOOKS: dict[str, CountryLook] = {s.code: s for s in _LOOKS}

"""The country table of the synthetic plate generator: text formats, colours, layouts.

Everything a reader needs to know about a country is in its ``CountrySpec`` entry
in ``SPECS`` at the bottom of this file.

Text formats are small patterns, read left to right:

==========  =============================================================
``L``       a letter of the country's alphabet (``CountrySpec.letters``)
``D``       a digit 0-9
``Z``       a digit 1-9 (no leading zero)
``{name}``  one choice from the pool ``name`` (country pools first, then
            the shared ``POOLS``): a string of single characters, or a
            ``Pool`` of whole strings
``[a-b]``   after a token: repeat it a..b times (``[n]``: n times)
`` - .``    separators: rendered on the plate, not part of the label
``~``       the emblem gap (DE registration seals, AT/HR/SK coats of arms):
            rendered as the emblem, written as ``Style.emblem_text``
``#``       the rest of the row goes into a box at the right (RU region),
            written as a space
``|``       row break of a two-row plate (label = top row, then bottom row)
==========  =============================================================

Every format compiles to a regular expression on the normalised label
(see ``data.synth.textgen``), so every generated text is checkable.
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
class Pool:
    """A pool of whole strings; ``regex`` is what the validator accepts in its place."""

    values: tuple[str, ...]
    regex: str | None = None  # None: the alternation of ``values``


@dataclass(frozen=True)
class Fmt:
    """One text format: pattern (see the module docstring), relative weight, style name."""

    pattern: str
    weight: float = 1.0
    style: str = "std"
    max_len: int | None = None  # longest allowed label (DE: 8), checked on generation and validation


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
class CountrySpec:
    code: str
    name: str
    letters: str  # alphabet of ``L``
    formats: tuple[Fmt, ...]  # one-row formats
    formats2: tuple[Fmt, ...] = ()  # two-row formats ('|' separates the rows); () = no two-row plates
    styles: dict[str, Style] = field(default_factory=lambda: {"std": Style()})
    pools: dict[str, str | Pool] = field(default_factory=dict)
    fonts: tuple[str, ...] = ("din", "narrow")  # font groups (data.synth.fonts.FONT_GROUPS)
    # Further real one-row formats, drawn only with the ``state_formats`` realism effect (so the
    # classic renders, and with them the fixed val/test sets, stay as they were). They are valid
    # texts of the country all the same (validation, reading under formats).
    formats_more: tuple[Fmt, ...] = ()


# --- alphabets and shared pools ----------------------------------------------------------
LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CYR_LOOKALIKE_RU = "ABEKMHOPCTYX"  # the 12 Cyrillic letters of Russian plates, as Latin
CYR_LOOKALIKE_UA = "ABCEHIKMOPTX"  # Ukrainian / Belarusian set (with I)


def _codes(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _nums(lo: int, hi: int, width: int = 2) -> tuple[str, ...]:
    return tuple(f"{i:0{width}d}" for i in range(lo, hi + 1))


DE_DISTRICTS = _codes(
    "B M HH K F S D DO E DU H HB L DD N A BN MS KA MA WI HD BI GE BO OB AC KI HL ROS LB ES "
    "BB RV FR OS OL PB HAM MH KR SB TR ER RE UN WES ME SU GL LEV NE MG VIE HS EU BM SI MK HA "
    "GT HF LIP MI DN KLE BOR COE ST HX SO RD PI SE OD HI WOB BS GF PE CE LG WL STD CUX OHZ ROW "
    "VER DEL WHV EMD AUR LER NOH EL CLP VEC DH NI HM HOL NOM GS WF HE J G C Z MD HAL PM BAR "
    "TF LDS OHV UM MOL FFO CB SPN EE OSL GR BZ PIR FG MEI ERZ VB HG MTK GG DA OF RÜD LM AZ "
    "MZ KH KL PS LU NW SP TÜ RT BL FN KN LÖ WT VS TUT RW SHA HN KÜN MOS TBB AA HDH UL BC "
    "NU A FS LA PA DEG SR R AM WEN NEW BT KU HO CO BA SW WÜ KT AB MIL AN ND IN EI RH WUG GAP "
    "OA TS RO MÜ ED FFB STA LL DAH"
)
# a plate with an umlaut district (MÜ, TÜ, ...) has no label in the A-Z charset: left out
DE_DISTRICTS = tuple(dict.fromkeys(d for d in DE_DISTRICTS if d.isascii()))
PL_DISTRICTS_2 = _codes(
    "WA WB WE WF WH WI WJ WK WN WT WU WW WX WY BI BS CB CT DW DL DJ EL EP ER FG FZ GD GA GS "
    "KR KK KT KN LU LB LC LZ NO NE OP PO PZ PL PK PN RZ RP SK SB SC SG SL SO ST TK ZS ZK ZZ"
)
PL_DISTRICTS_3 = _codes(
    "WPI WOT WGM WZ0 WPR WND WMA WSE BIA BSU CBY CTR DWR DJE EBE EPI FGW GDA GKA KRA KWI "
    "LUB LBI NOL OPO POZ PKA RZE SKA SBI TKI ZSZ ZKO WOS WGR KMY KNS LZA EZG GWE PSZ RKR"
)
PL_DISTRICTS_3 = tuple(d for d in PL_DISTRICTS_3 if d.isalpha())
ES_PROVINCES = _codes(
    "A AB AL AV B BA BI BU C CA CC CE CO CR CS CU GC GE GI GR GU H HU J L LE LO LU M MA ML "
    "MU NA O OR P PM PO S SA SE SG SO SS T TE TF TO V VA VI Z ZA"
)
IT_PROVINCES = _codes(
    "AG AL AN AO AP AQ AR AT AV BA BG BI BL BN BO BR BS BZ CA CB CE CH CL CN CO CR CS CT CZ "
    "FE FG FI FO FR GE GO GR IM IS LE LI LT LU MC ME MI MN MO MS MT NA NO NU OR PA PC PD PE "
    "PG PI PN PO PR PT PV PZ RA RC RE RG RI RM RN RO SA SI SO SP SR SS SV TA TE TN TO TP TR "
    "TS TV UD VA VC VE VI VR VT"
)
AT_DISTRICTS = _codes(
    "W G L S I K B GU LL SL BN MD WU BL KO AM BR FR GM KI LE LI VB VK WL WN WT ZE JO SP SV "
    "HL HO KB KS LA LB LZ ME MI MU NK OW PE PL RI RO SB SD SE SR TU UU VL WO ZT"
)
CH_CANTONS = _codes("AG AI AR BE BL BS FR GE GL GR JU LU NE NW OW SG SH SO SZ TG TI UR VD VS ZG ZH")
SK_DISTRICTS = _codes(
    "BA BB BJ BL BN BR BS BY CA DK DS DT GA GL HC HE IL KA KE KK KM KN KS LC LE LM LV MA MI "
    "ML MT NM NO NR NZ PB PD PE PK PN PO PP PT PU RA RK RS RV SA SB SC SE SI SK SL SN SO SP "
    "SV TN TO TR TS TT TV VK VT ZA ZC ZH ZM ZV"
)
HR_CITIES = _codes(
    "BJ BM DA DE DJ DU GS IM KA KC KR KT MA NA NG OG OS PS PU RI SB SK SL ST VK VT VU ZD ZG"
)
RO_COUNTIES = _codes(
    "AB AR AG BC BH BN BT BV BR BZ CS CL CJ CT CV DB DJ GL GR GJ HR HD IL IS IF MM MH MS NT "
    "OT PH SM SJ SB SV TR TM TL VS VL VN"
)
RU_REGIONS = _nums(1, 99) + _codes(
    "102 113 116 121 123 124 125 126 134 136 138 142 147 150 152 154 159 161 163 164 173 "
    "174 177 178 186 190 196 197 199 702 716 750 761 763 774 777 790 797 799 977"
)
UA_REGIONS = _codes(
    "AA KA AB KB AC KC AE KE AH KH AI KI AK KK AM KM AO KO AP KP AT KT AX KX BA HA BB HB BC "
    "HC BE HE BH HH BI HI BK HK BM HM BO HO BT HT BX HX CA IA CB IB CE IE CH IH"
)
VN_PROVINCES = tuple(f"{i:02d}" for i in range(11, 100) if i not in (13, 42, 44, 45, 46, 87, 91, 96))
GB_AGE = _nums(2, 24) + _nums(51, 74)
NO_EV = _codes("EL EK EV EB EC ED EE EF EH EJ")

POOLS: dict[str, str | Pool] = {
    "ru": CYR_LOOKALIKE_RU,
    "ua": CYR_LOOKALIKE_UA,
    "ru_region": Pool(RU_REGIONS, r"[0-9]{2,3}"),
}

# --- styles shared by many countries ----------------------------------------------------------


def eu(band: str, **kw) -> dict[str, Style]:
    """The one-style table of a plain EU plate: white, black text, blue band with ``band``."""
    return {"std": Style(band=band, **kw)}


US_STYLE = Style(bg=US_BG, fg=US_FG, decor=("us_state",), aspect=2.0, border=0.7, text_h=(0.42, 0.54))


# --- the table -------------------------------------------------------------------------------
_SPECS: tuple[CountrySpec, ...] = (
    CountrySpec(
        "DE", "Germany", LATIN,
        formats=(
            Fmt("{district}~L[1-2] ZD[0-3]", 0.94, max_len=8),
            Fmt("{district}~L[1-2] ZD[0-3]{suffix}", 0.06, max_len=8),  # E: electric, H: historic
        ),
        formats2=(Fmt("{district}~L[1-2]|ZD[0-3]", max_len=8),),
        styles={"std": Style(band="D", emblem="seals", emblem_text="-", aspect2=1.75)},
        pools={"district": Pool(DE_DISTRICTS, r"[A-Z]{1,3}"), "suffix": "EH"},
        fonts=("din",),
    ),
    CountrySpec(
        "FR", "France", "ABCDEFGHJKLMNPQRSTVWXYZ",  # SIV: no I, O, U
        formats=(
            Fmt("LL-DDD-LL", 0.75),  # SIV (2009)
            Fmt("ZD[0-3] L[1-3] {dep}", 0.2, style="fni"),  # FNI (1950-2009)
            Fmt("ZD[0-3] L[1-3] {dep}", 0.05, style="fni_black"),
        ),
        formats2=(Fmt("LL-DDD|LL", 0.8), Fmt("ZD[0-3] L[1-2]|{dep}", 0.2, style="fni")),
        styles={
            "std": Style(band="F", decor=("fr_right",), aspect2=210 / 130),
            "fni": Style(bg=(WHITE, FR_YELLOW), aspect2=210 / 130),
            "fni_black": Style(bg=(BLACK,), fg=((215, 215, 210),), border=0.0),
        },
        pools={"dep": Pool(_nums(1, 95) + ("2A", "2B", "971", "972", "973", "974", "976"),
                           r"(?:[0-9]{2}|2A|2B|97[1-6])")},
        fonts=("din", "narrow"),
    ),
    CountrySpec(
        "IT", "Italy", "ABCDEFGHJKLMNPRSTVWXYZ",  # no I, O, Q, U
        formats=(
            Fmt("LL DDD LL", 0.85),  # 1994-
            Fmt("{prov} ZLDDDD", 0.05, style="old"),  # 1985-1994 provincial
            Fmt("{prov} LDDDDD", 0.05, style="old"),
            Fmt("{prov} ZDDDDD", 0.05, style="old"),
        ),
        formats2=(Fmt("LL|DDDDD"),),  # motorcycles
        styles={
            "std": Style(band="I", decor=("it_right",), aspect=360 / 110, aspect2=1.3, text_h=(0.54, 0.64)),
            "old": Style(aspect=3.6, border=0.6),
        },
        pools={"prov": Pool(IT_PROVINCES, r"[A-Z]{2}")},
    ),
    CountrySpec(
        "ES", "Spain", "BCDFGHJKLMNPRSTVWXYZ",  # no vowels, no Q, no Ñ
        formats=(
            Fmt("DDDD LLL", 0.8),  # 2000-
            Fmt("{prov}-DDDD-{old}[1-2]", 0.2, style="old"),  # provincial 1971-2000
        ),
        formats2=(Fmt("DDDD|LLL"),),
        styles={"std": Style(band="E"), "old": Style(border=0.8)},
        pools={"prov": Pool(ES_PROVINCES, r"[A-Z]{1,2}"), "old": "ABCDEFGHIJKLMNOPRSTUVWXYZ"},
    ),
    CountrySpec(
        "PL", "Poland", "ACEFGHJKLMNPRSTUVWXY",  # serial letters: no B D I O Z
        formats=(
            Fmt("{d2} DDDDD"), Fmt("{d2} DDDDL"), Fmt("{d2} DDDLL"), Fmt("{d2} DLDDD"), Fmt("{d2} DLLDD"),
            Fmt("{d3} LDDD"), Fmt("{d3} DDLL"), Fmt("{d3} DLDD"), Fmt("{d3} DDDDL"), Fmt("{d3} DDDLL"),
            Fmt("{old}[3] DDDD", 0.6, style="old"),  # black plates 1976-2000
        ),
        formats2=(Fmt("{d2}|DDDDD"), Fmt("{d2}|DDDLL"), Fmt("{d3}|DDDDL"), Fmt("{d3}|LDDD")),
        styles={"std": Style(band="PL"), "old": Style(bg=(BLACK,), fg=((228, 228, 224),), border=0.6, aspect=4.2)},
        pools={"d2": Pool(PL_DISTRICTS_2, r"[A-Z]{2}"), "d3": Pool(PL_DISTRICTS_3, r"[A-Z]{3}"), "old": LATIN},
    ),
    CountrySpec(
        "NL", "Netherlands", "BDFGHJKLMNPRSTVXZ",
        formats=tuple(
            Fmt(p) for p in (  # sidecodes 1-14
                "LL-DD-DD", "DD-DD-LL", "DD-LL-DD", "LL-DD-LL", "LL-LL-DD", "DD-LL-LL", "DD-LLL-D",
                "D-LLL-DD", "LL-DDD-L", "L-DDD-LL", "LLL-DD-L", "L-DD-LLL", "D-LL-DDD", "DDD-LL-D",
            )
        ),
        styles={"std": Style(bg=(NL_YELLOW,), band="NL")},
        fonts=("din", "narrow"),
    ),
    CountrySpec(
        "BE", "Belgium", LATIN,
        formats=(Fmt("{first}-LLL-DDD", 0.75), Fmt("LLL-DDD", 0.15), Fmt("DDD-LLL", 0.1)),
        styles={"std": Style(fg=(BE_RED,), band="B")},
        pools={"first": "12"},
    ),
    CountrySpec(
        "AT", "Austria", "ABCDEFGHIJKLMNOPRSTUVWXYZ",
        formats=(Fmt("{d}~ZD[0-3] L[1-2]", max_len=8), Fmt("{d}~ZD[1-4]L", 0.4, max_len=8)),
        formats2=(Fmt("{d}~|ZD[0-2] L[1-2]", max_len=8),),
        styles={"std": Style(band="A", decor=("at_stripes",), emblem="at", emblem_text=" ", aspect=520 / 120)},
        pools={"d": Pool(AT_DISTRICTS, r"[A-Z]{1,2}")},
    ),
    CountrySpec(
        "CH", "Switzerland", LATIN,
        formats=(Fmt("{canton} ZD[0-5]", 0.7), Fmt("{canton} ZD[0-5]", 0.3, style="rear")),
        formats2=(Fmt("{canton}|ZD[1-5]", style="rear"),),
        styles={
            "std": Style(aspect=500 / 110),
            "rear": Style(aspect=500 / 110, decor=("ch_shields",), aspect2=300 / 160),
        },
        pools={"canton": Pool(CH_CANTONS, r"[A-Z]{2}")},
    ),
    CountrySpec(
        "GB", "United Kingdom", "ABCDEFGHJKLMNOPRSTUVWXYZ",  # no I, Q
        formats=(
            Fmt("{area}L{age} LLL", 0.8),  # 2001-
            Fmt("LZD[0-2] LLL", 0.12),  # prefix 1983-2001
            Fmt("LLL ZD[0-2]L", 0.08),  # suffix 1963-1983
        ),
        formats2=(Fmt("{area}L{age}|LLL"),),
        styles={"std": Style(bg=(WHITE, GB_YELLOW), band="UK", band_kind="gb", band_prob=0.4)},
        pools={"area": "ABCDEFGHKLMNOPRSVWY", "age": Pool(GB_AGE, r"[0-9]{2}")},
        fonts=("narrow", "din"),
    ),
    CountrySpec(
        "CZ", "Czechia", LATIN,
        formats=(
            Fmt("Z{reg}D DDDD", 0.8), Fmt("Z{reg}{reg} DDDD", 0.05),  # 2001-
            Fmt("LL[1-2] DD-DD", 0.15, style="old"),  # 1960-2001
        ),
        formats2=(Fmt("Z{reg}D|DDDD"),),
        styles={"std": Style(band="CZ"), "old": Style(border=0.7)},
        pools={"reg": "ABCEHJKLMPSTUZ"},
    ),
    CountrySpec(
        "SK", "Slovakia", LATIN,
        formats=(Fmt("{d}~DDDLL", 0.7), Fmt("LL DDDLL", 0.3)),  # 1997-2022 district + arms; 2023-
        formats2=(Fmt("{d}~|DDDLL"),),
        styles={"std": Style(band="SK", emblem="sk", emblem_text="-")},
        pools={"d": Pool(SK_DISTRICTS, r"[A-Z]{2}")},
    ),
    CountrySpec(
        "HR", "Croatia", "ABCDEFGHIJKLMNOPRSTUVZ",
        formats=(Fmt("{city}~DDD-L[1-2]"), Fmt("{city}~DDDD-L[1-2]")),
        styles={"std": Style(band="HR", emblem="hr", emblem_text=" ")},
        pools={"city": Pool(HR_CITIES, r"[A-Z]{2}")},
    ),
    CountrySpec(
        "SE", "Sweden", "ABCDEFGHJKLMNOPRSTUWXYZ",  # no I, Q, V
        formats=(Fmt("LLL DDD", 0.7), Fmt("LLL DD{last}", 0.3)),  # 2019-: last may be a letter
        formats2=(Fmt("LLL|DDD"),),
        styles=eu("S"),
        pools={"last": "ABCDEFGHJKLMNPRSTUWXYZ"},
    ),
    CountrySpec(
        "FI", "Finland", "ABCDEFGHIJKLMNOPRSTUVXYZ",
        formats=(Fmt("LLL-ZD[0-2]", 0.8), Fmt("LL-ZD[0-2]", 0.2)),
        styles={"std": Style(band="FIN", aspect=442 / 118, border=1.4)},
    ),
    CountrySpec(
        "NO", "Norway", "ABCDEFGHJKLMNPRSTUVWXYZ",
        formats=(Fmt("LL ZDDDD", 0.8), Fmt("{ev} ZDDDD", 0.2, style="ev")),
        formats2=(Fmt("LL|ZDDDD"),),
        styles={
            "std": Style(band="N", band_kind="no"),
            "ev": Style(band="N", band_kind="no", fg=(NO_GREEN,)),
        },
        pools={"ev": Pool(NO_EV, r"E[A-Z]")},
    ),
    CountrySpec("LT", "Lithuania", LATIN, formats=(Fmt("LLL DDD"),), styles=eu("LT")),
    CountrySpec("LV", "Latvia", LATIN, formats=(Fmt("LL-ZD[0-3]"),), styles=eu("LV")),
    CountrySpec(
        "EE", "Estonia", LATIN, formats=(Fmt("DDD LLL"),), formats2=(Fmt("DDD|LLL"),), styles=eu("EST")
    ),
    CountrySpec(
        "RO", "Romania", "ABCDEFGHIJKLMNOPRSTUVWXYZ",
        formats=(Fmt("{b} DD[1-2] LLL", 0.3), Fmt("{county} DD LLL", 0.7)),  # Bucharest; counties
        styles=eu("RO"),
        pools={"county": Pool(RO_COUNTIES, r"[A-Z]{2}"), "b": "B"},
    ),
    CountrySpec(
        "RU", "Russia", CYR_LOOKALIKE_RU,
        formats=(
            Fmt("L DDD LL#{ru_region}", 0.85),
            Fmt("LL DDD#{ru_region}", 0.1, style="taxi"),  # taxi
            Fmt("LL DDDD#{ru_region}", 0.05),  # trailers
        ),
        formats2=(Fmt("L DDD|LL#{ru_region}", 0.7), Fmt("DDDD|LL#{ru_region}", 0.3)),  # type 1A, motorcycles
        styles={
            "std": Style(aspect=520 / 112, aspect2=290 / 170, box="ru"),
            "taxi": Style(bg=(TAXI_YELLOW,), aspect=520 / 112, box="ru"),
        },
        fonts=("din", "mono"),
    ),
    CountrySpec(
        "UA", "Ukraine", CYR_LOOKALIKE_UA,
        formats=(Fmt("{reg} DDDD LL", 0.85), Fmt("DDD-DD LL", 0.15, style="old")),  # 2004-; 1995-2004
        formats2=(Fmt("{reg}|DDDD LL"),),
        styles={
            "std": Style(band="UA", band_kind="ua", aspect=520 / 112),
            "old": Style(band="UA", band_kind="ua_old", aspect=520 / 112),
        },
        pools={"reg": Pool(UA_REGIONS, r"[ABCEHIKMOPTX]{2}")},
        fonts=("din", "mono"),
    ),
    CountrySpec(
        "BY", "Belarus", CYR_LOOKALIKE_UA,
        formats=(Fmt("DDDD LL-{region}", 0.9), Fmt("LDDDDL-{region}", 0.1)),  # cars; trailers
        formats2=(Fmt("DDDD|LL-{region}"),),
        styles={"std": Style(band="BY", band_kind="by", aspect=520 / 112)},
        pools={"region": "1234567"},
        fonts=("din", "mono"),
    ),
    CountrySpec(
        "KZ", "Kazakhstan", "ABCDEFGHIJKLMNOPRSTUVWXYZ",
        formats=(
            Fmt("DDD LLL#{region}", 0.75), Fmt("DDD LL#{region}", 0.1),  # 2012-: private; companies
            Fmt("{old} DDD LLL", 0.15, style="old"),  # 1993-2012: region letter first
        ),
        formats2=(Fmt("DDD|LLL#{region}"),),
        styles={
            "std": Style(band="KZ", band_kind="kz", box="kz", aspect=520 / 112),
            "old": Style(aspect=520 / 112, border=0.8),
        },
        pools={"region": Pool(_nums(1, 20), r"(?:0[1-9]|1[0-9]|20)"), "old": "ABCDEFHLMNPRSTXZ"},
        fonts=("din", "mono"),
    ),
    CountrySpec(
        "US", "United States", "ABCDEFGHJKLMNPRSTUVWXYZ",  # no I, O, Q
        formats=(
            Fmt("LLL DDDD", 1.0), Fmt("LLL-DDDD", 0.6), Fmt("ZLLLDDD", 0.8), Fmt("DDD LLL", 0.5),
            Fmt("LLL DDD", 0.5), Fmt("DDD-LLL", 0.3), Fmt("LL DDDDD", 0.3), Fmt("ZLL DDDD", 0.3),
            Fmt("DLLDDD", 0.2), Fmt("LLLL DD", 0.1),
        ),
        styles={
            "std": US_STYLE,
            "tab": replace(US_STYLE, decor=("us_state", "us_tab")),  # Missouri: a tab between the groups
        },
        formats_more=(  # state formats beyond the common ones
            Fmt("LLD LDL", 1.0, style="tab"),  # Missouri
            Fmt("Z{latin}[3]DDD", 0.8),  # California, whose series use I, O and Q too
            Fmt("ZLDDDDD", 0.3),  # California commercial
            Fmt("LDD LLL", 0.3),  # New Jersey
            Fmt("ZLL DDDD", 0.3),  # Maryland
            Fmt("LLL LDD", 0.3),  # Florida, Colorado
            Fmt("DDD LDD", 0.2),  # Nevada
            Fmt("LDD DLL", 0.2),  # Utah
            Fmt("LL DDDD", 0.2),  # District of Columbia
            Fmt("DDDD LL", 0.1),  # Maine
            Fmt("DDD DDDD", 0.2),  # digits only (New Hampshire, fleets)
            Fmt("DDDDDD", 0.1),  # Delaware
        ),
        pools={"latin": LATIN},
        fonts=("narrow", "mono", "din"),
    ),
    CountrySpec(
        "BR", "Brazil", LATIN,
        formats=(
            Fmt("LLLDLDD", 0.6, style="mercosul"),  # Mercosul (2018-)
            Fmt("LLL-DDDD", 0.34, style="old"), Fmt("LLL-DDDD", 0.06, style="old_red"),  # 1990-2018
        ),
        formats2=(Fmt("LLL|DLDD", 0.6, style="mercosul"), Fmt("LLL|DDDD", 0.4, style="old")),
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
    CountrySpec(
        "VN", "Vietnam", "ABCDEFGHKLMNPSTUVXYZ",
        formats=(
            Fmt("{prov}L-DDD.DD", 0.7), Fmt("{prov}L-DDDD", 0.2),  # 2012-; older 4-digit
            Fmt("{prov}{two}-DDD.DD", 0.06, style="com"),  # LD: foreign-invested companies
            Fmt("{prov}L-DDD.DD", 0.06, style="gov"),  # state vehicles: white on blue
        ),
        formats2=(
            Fmt("{prov}L|DDD.DD", 0.35), Fmt("{prov}L|DDDD", 0.1),  # square car plates
            Fmt("{prov}-LZ|DDD.DD", 0.45), Fmt("{prov}-LZ|DDDD", 0.1),  # motorbikes
        ),
        styles={
            "std": Style(bg=(WHITE, WHITE, WHITE, WHITE, VN_YELLOW), aspect=520 / 110, aspect2=330 / 165,
                         border=1.3),
            "com": Style(bg=(WHITE, VN_YELLOW), aspect=520 / 110, aspect2=330 / 165, border=1.3),
            "gov": Style(bg=(VN_BLUE,), fg=(WHITE,), aspect=520 / 110, aspect2=330 / 165, border=1.3),
        },
        pools={"prov": Pool(VN_PROVINCES, r"[0-9]{2}"), "two": Pool(("LD",), r"[A-Z]{2}")},
        fonts=("narrow", "din"),
    ),
)

SPECS: dict[str, CountrySpec] = {s.code: s for s in _SPECS}

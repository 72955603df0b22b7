"""The plate formats of each country: which texts are valid plates, and how to draw one.

Domain knowledge shared by the synthetic generator (``data.synth``), the format-constrained
decoding (``models.plate_formats``), the metrics and the config. It imports only
``data.text``; how plates look (colours, layouts, fonts) is the renderer's, in
``data/synth/countries.py``.

Text formats are small patterns, read left to right:

==========  =============================================================
``L``       a letter of the country's alphabet (``CountryFormats.letters``)
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

Every format compiles to a regular expression on the normalised label, so every
generated text is checkable (:func:`is_valid_plate_text`, :func:`plate_regex`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from data.text import COUNTRIES, normalize_plate_text

SEPARATOR_CHARS = " -."  # rendered, not in the label
EMBLEM = "~"  # emblem gap marker
BOX = "#"  # start of the right box (RU region)
ROW_BREAK = "|"


class Draws(Protocol):
    """A source of uniform draws in [0, 1) (``data.synth.textgen.UniformStream``)."""

    def __call__(self) -> float: ...

    def randint(self, n: int) -> int: ...


@dataclass(frozen=True)
class Pool:
    """A pool of whole strings; ``regex`` is what the validator accepts in its place."""

    values: tuple[str, ...]
    regex: str | None = None  # None: the alternation of ``values``


@dataclass(frozen=True)
class Fmt:
    """One text format: pattern (see the module docstring), relative weight (how common it is),
    and the name of its look among the country's styles (``data.synth.countries``)."""

    pattern: str
    weight: float = 1.0
    style: str = "std"
    max_len: int | None = None  # longest allowed label (DE: 8), checked on generation and validation


@dataclass(frozen=True)
class CountryFormats:
    code: str
    name: str
    letters: str  # alphabet of ``L``
    formats: tuple[Fmt, ...]  # one-row formats
    formats2: tuple[Fmt, ...] = ()  # two-row formats ('|' separates the rows); () = no two-row plates
    pools: dict[str, str | Pool] = field(default_factory=dict)
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


# --- the table -------------------------------------------------------------------------------
_FORMATS: tuple[CountryFormats, ...] = (
    CountryFormats(
        "DE", "Germany", LATIN,
        formats=(
            Fmt("{district}~L[1-2] ZD[0-3]", 0.94, max_len=8),
            Fmt("{district}~L[1-2] ZD[0-3]{suffix}", 0.06, max_len=8),  # E: electric, H: historic
        ),
        formats2=(Fmt("{district}~L[1-2]|ZD[0-3]", max_len=8),),
        pools={"district": Pool(DE_DISTRICTS, r"[A-Z]{1,3}"), "suffix": "EH"},
    ),
    CountryFormats(
        "FR", "France", "ABCDEFGHJKLMNPQRSTVWXYZ",  # SIV: no I, O, U
        formats=(
            Fmt("LL-DDD-LL", 0.75),  # SIV (2009)
            Fmt("ZD[0-3] L[1-3] {dep}", 0.2, style="fni"),  # FNI (1950-2009)
            Fmt("ZD[0-3] L[1-3] {dep}", 0.05, style="fni_black"),
        ),
        formats2=(Fmt("LL-DDD|LL", 0.8), Fmt("ZD[0-3] L[1-2]|{dep}", 0.2, style="fni")),
        pools={"dep": Pool(_nums(1, 95) + ("2A", "2B", "971", "972", "973", "974", "976"),
                           r"(?:[0-9]{2}|2A|2B|97[1-6])")},
    ),
    CountryFormats(
        "IT", "Italy", "ABCDEFGHJKLMNPRSTVWXYZ",  # no I, O, Q, U
        formats=(
            Fmt("LL DDD LL", 0.85),  # 1994-
            Fmt("{prov} ZLDDDD", 0.05, style="old"),  # 1985-1994 provincial
            Fmt("{prov} LDDDDD", 0.05, style="old"),
            Fmt("{prov} ZDDDDD", 0.05, style="old"),
        ),
        formats2=(Fmt("LL|DDDDD"),),  # motorcycles
        pools={"prov": Pool(IT_PROVINCES, r"[A-Z]{2}")},
    ),
    CountryFormats(
        "ES", "Spain", "BCDFGHJKLMNPRSTVWXYZ",  # no vowels, no Q, no Ñ
        formats=(
            Fmt("DDDD LLL", 0.8),  # 2000-
            Fmt("{prov}-DDDD-{old}[1-2]", 0.2, style="old"),  # provincial 1971-2000
        ),
        formats2=(Fmt("DDDD|LLL"),),
        pools={"prov": Pool(ES_PROVINCES, r"[A-Z]{1,2}"), "old": "ABCDEFGHIJKLMNOPRSTUVWXYZ"},
    ),
    CountryFormats(
        "PL", "Poland", "ACEFGHJKLMNPRSTUVWXY",  # serial letters: no B D I O Z
        formats=(
            Fmt("{d2} DDDDD"), Fmt("{d2} DDDDL"), Fmt("{d2} DDDLL"), Fmt("{d2} DLDDD"), Fmt("{d2} DLLDD"),
            Fmt("{d3} LDDD"), Fmt("{d3} DDLL"), Fmt("{d3} DLDD"), Fmt("{d3} DDDDL"), Fmt("{d3} DDDLL"),
            Fmt("{old}[3] DDDD", 0.6, style="old"),  # black plates 1976-2000
        ),
        formats2=(Fmt("{d2}|DDDDD"), Fmt("{d2}|DDDLL"), Fmt("{d3}|DDDDL"), Fmt("{d3}|LDDD")),
        pools={"d2": Pool(PL_DISTRICTS_2, r"[A-Z]{2}"), "d3": Pool(PL_DISTRICTS_3, r"[A-Z]{3}"), "old": LATIN},
    ),
    CountryFormats(
        "NL", "Netherlands", "BDFGHJKLMNPRSTVXZ",
        formats=tuple(
            Fmt(p) for p in (  # sidecodes 1-14
                "LL-DD-DD", "DD-DD-LL", "DD-LL-DD", "LL-DD-LL", "LL-LL-DD", "DD-LL-LL", "DD-LLL-D",
                "D-LLL-DD", "LL-DDD-L", "L-DDD-LL", "LLL-DD-L", "L-DD-LLL", "D-LL-DDD", "DDD-LL-D",
            )
        ),
    ),
    CountryFormats(
        "BE", "Belgium", LATIN,
        formats=(Fmt("{first}-LLL-DDD", 0.75), Fmt("LLL-DDD", 0.15), Fmt("DDD-LLL", 0.1)),
        pools={"first": "12"},
    ),
    CountryFormats(
        "AT", "Austria", "ABCDEFGHIJKLMNOPRSTUVWXYZ",
        formats=(Fmt("{d}~ZD[0-3] L[1-2]", max_len=8), Fmt("{d}~ZD[1-4]L", 0.4, max_len=8)),
        formats2=(Fmt("{d}~|ZD[0-2] L[1-2]", max_len=8),),
        pools={"d": Pool(AT_DISTRICTS, r"[A-Z]{1,2}")},
    ),
    CountryFormats(
        "CH", "Switzerland", LATIN,
        formats=(Fmt("{canton} ZD[0-5]", 0.7), Fmt("{canton} ZD[0-5]", 0.3, style="rear")),
        formats2=(Fmt("{canton}|ZD[1-5]", style="rear"),),
        pools={"canton": Pool(CH_CANTONS, r"[A-Z]{2}")},
    ),
    CountryFormats(
        "GB", "United Kingdom", "ABCDEFGHJKLMNOPRSTUVWXYZ",  # no I, Q
        formats=(
            Fmt("{area}L{age} LLL", 0.8),  # 2001-
            Fmt("LZD[0-2] LLL", 0.12),  # prefix 1983-2001
            Fmt("LLL ZD[0-2]L", 0.08),  # suffix 1963-1983
        ),
        formats2=(Fmt("{area}L{age}|LLL"),),
        pools={"area": "ABCDEFGHKLMNOPRSVWY", "age": Pool(GB_AGE, r"[0-9]{2}")},
    ),
    CountryFormats(
        "CZ", "Czechia", LATIN,
        formats=(
            Fmt("Z{reg}D DDDD", 0.8), Fmt("Z{reg}{reg} DDDD", 0.05),  # 2001-
            Fmt("LL[1-2] DD-DD", 0.15, style="old"),  # 1960-2001
        ),
        formats2=(Fmt("Z{reg}D|DDDD"),),
        pools={"reg": "ABCEHJKLMPSTUZ"},
    ),
    CountryFormats(
        "SK", "Slovakia", LATIN,
        formats=(Fmt("{d}~DDDLL", 0.7), Fmt("LL DDDLL", 0.3)),  # 1997-2022 district + arms; 2023-
        formats2=(Fmt("{d}~|DDDLL"),),
        pools={"d": Pool(SK_DISTRICTS, r"[A-Z]{2}")},
    ),
    CountryFormats(
        "HR", "Croatia", "ABCDEFGHIJKLMNOPRSTUVZ",
        formats=(Fmt("{city}~DDD-L[1-2]"), Fmt("{city}~DDDD-L[1-2]")),
        pools={"city": Pool(HR_CITIES, r"[A-Z]{2}")},
    ),
    CountryFormats(
        "SE", "Sweden", "ABCDEFGHJKLMNOPRSTUWXYZ",  # no I, Q, V
        formats=(Fmt("LLL DDD", 0.7), Fmt("LLL DD{last}", 0.3)),  # 2019-: last may be a letter
        formats2=(Fmt("LLL|DDD"),),
        pools={"last": "ABCDEFGHJKLMNPRSTUWXYZ"},
    ),
    CountryFormats(
        "FI", "Finland", "ABCDEFGHIJKLMNOPRSTUVXYZ",
        formats=(Fmt("LLL-ZD[0-2]", 0.8), Fmt("LL-ZD[0-2]", 0.2)),
    ),
    CountryFormats(
        "NO", "Norway", "ABCDEFGHJKLMNPRSTUVWXYZ",
        formats=(Fmt("LL ZDDDD", 0.8), Fmt("{ev} ZDDDD", 0.2, style="ev")),
        formats2=(Fmt("LL|ZDDDD"),),
        pools={"ev": Pool(NO_EV, r"E[A-Z]")},
    ),
    CountryFormats("LT", "Lithuania", LATIN, formats=(Fmt("LLL DDD"),)),
    CountryFormats("LV", "Latvia", LATIN, formats=(Fmt("LL-ZD[0-3]"),)),
    CountryFormats("EE", "Estonia", LATIN, formats=(Fmt("DDD LLL"),), formats2=(Fmt("DDD|LLL"),)),
    CountryFormats(
        "RO", "Romania", "ABCDEFGHIJKLMNOPRSTUVWXYZ",
        formats=(Fmt("{b} DD[1-2] LLL", 0.3), Fmt("{county} DD LLL", 0.7)),  # Bucharest; counties
        pools={"county": Pool(RO_COUNTIES, r"[A-Z]{2}"), "b": "B"},
    ),
    CountryFormats(
        "RU", "Russia", CYR_LOOKALIKE_RU,
        formats=(
            Fmt("L DDD LL#{ru_region}", 0.85),
            Fmt("LL DDD#{ru_region}", 0.1, style="taxi"),  # taxi
            Fmt("LL DDDD#{ru_region}", 0.05),  # trailers
        ),
        formats2=(Fmt("L DDD|LL#{ru_region}", 0.7), Fmt("DDDD|LL#{ru_region}", 0.3)),  # type 1A, motorcycles
    ),
    CountryFormats(
        "UA", "Ukraine", CYR_LOOKALIKE_UA,
        formats=(Fmt("{reg} DDDD LL", 0.85), Fmt("DDD-DD LL", 0.15, style="old")),  # 2004-; 1995-2004
        formats2=(Fmt("{reg}|DDDD LL"),),
        pools={"reg": Pool(UA_REGIONS, r"[ABCEHIKMOPTX]{2}")},
    ),
    CountryFormats(
        "BY", "Belarus", CYR_LOOKALIKE_UA,
        formats=(Fmt("DDDD LL-{region}", 0.9), Fmt("LDDDDL-{region}", 0.1)),  # cars; trailers
        formats2=(Fmt("DDDD|LL-{region}"),),
        pools={"region": "1234567"},
    ),
    CountryFormats(
        "KZ", "Kazakhstan", "ABCDEFGHIJKLMNOPRSTUVWXYZ",
        formats=(
            Fmt("DDD LLL#{region}", 0.75), Fmt("DDD LL#{region}", 0.1),  # 2012-: private; companies
            Fmt("{old} DDD LLL", 0.15, style="old"),  # 1993-2012: region letter first
        ),
        formats2=(Fmt("DDD|LLL#{region}"),),
        pools={"region": Pool(_nums(1, 20), r"(?:0[1-9]|1[0-9]|20)"), "old": "ABCDEFHLMNPRSTXZ"},
    ),
    CountryFormats(
        "US", "United States", "ABCDEFGHJKLMNPRSTUVWXYZ",  # no I, O, Q
        formats=(
            Fmt("LLL DDDD", 1.0), Fmt("LLL-DDDD", 0.6), Fmt("ZLLLDDD", 0.8), Fmt("DDD LLL", 0.5),
            Fmt("LLL DDD", 0.5), Fmt("DDD-LLL", 0.3), Fmt("LL DDDDD", 0.3), Fmt("ZLL DDDD", 0.3),
            Fmt("DLLDDD", 0.2), Fmt("LLLL DD", 0.1),
        ),
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
    ),
    CountryFormats(
        "BR", "Brazil", LATIN,
        formats=(
            Fmt("LLLDLDD", 0.6, style="mercosul"),  # Mercosul (2018-)
            Fmt("LLL-DDDD", 0.34, style="old"), Fmt("LLL-DDDD", 0.06, style="old_red"),  # 1990-2018
        ),
        formats2=(Fmt("LLL|DLDD", 0.6, style="mercosul"), Fmt("LLL|DDDD", 0.4, style="old")),
    ),
    CountryFormats(
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
        pools={"prov": Pool(VN_PROVINCES, r"[0-9]{2}"), "two": Pool(("LD",), r"[A-Z]{2}")},
    ),
)

COUNTRY_FORMATS: dict[str, CountryFormats] = {s.code: s for s in _FORMATS}


# --- compiled formats --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    choices: tuple[str, ...]  # empty for a separator / marker
    lo: int = 1
    hi: int = 1
    literal: str = ""  # separator or marker character
    regex: str = ""
    letter: bool = False  # an ``L``: a letter of the country's alphabet


class CompiledFormat:
    """One ``Fmt`` ready to generate from and to validate against."""

    def __init__(self, spec: CountryFormats, fmt: Fmt):
        self.fmt = fmt
        self.rows = fmt.pattern.count(ROW_BREAK) + 1
        self.tokens = _parse(spec, fmt.pattern)
        body = "".join(t.regex for t in self.tokens)
        lo = sum(t.lo * min(len(c) for c in t.choices) for t in self.tokens if t.choices)
        hi = sum(t.hi * max(len(c) for c in t.choices) for t in self.tokens if t.choices)
        self.min_len = lo
        self.max_len = hi if fmt.max_len is None else min(hi, fmt.max_len)
        if self.max_len < self.min_len:
            raise ValueError(f"{spec.code} format {fmt.pattern!r}: max_len below the shortest text")
        self.regex = body if fmt.max_len is None else f"(?=[0-9A-Z]{{1,{fmt.max_len}}}$){body}"

    def generate_raw(self, u: Draws, letters: str | None = None) -> str:
        """The raw text with its markers ('~', '#', '|'); retried until within ``max_len``.
        ``letters``: the alphabet of every ``L`` instead of the country's (such a text may be no
        valid plate of the country; the generator's ``any_letters``)."""
        for _ in range(100):
            parts: list[str] = []
            n_label = 0
            for t in self.tokens:
                if not t.choices:
                    parts.append(t.literal)
                    continue
                n = t.lo if t.lo == t.hi else t.lo + u.randint(t.hi - t.lo + 1)
                ch = letters if letters and t.letter else t.choices
                for _ in range(n):
                    c = ch[u.randint(len(ch))]
                    parts.append(c)
                    n_label += len(c)
            if n_label <= self.max_len:
                return "".join(parts)
        raise RuntimeError(f"format {self.fmt.pattern!r} keeps producing texts over max_len")


_TOKEN_RE = re.compile(r"(\{[a-z0-9_]+\}|[LDZ]|[ \-.~#|])(\[(\d+)(?:-(\d+))?\])?")


def _parse(spec: CountryFormats, pattern: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(pattern):
        m = _TOKEN_RE.match(pattern, pos)
        if m is None:
            raise ValueError(f"{spec.code}: bad format pattern {pattern!r} at {pattern[pos:]!r}")
        pos = m.end()
        head, quant, a, b = m.group(1), m.group(2), m.group(3), m.group(4)
        lo = hi = 1
        if quant:
            lo = int(a)
            hi = int(b) if b is not None else lo
        if head in SEPARATOR_CHARS or head in (EMBLEM, BOX, ROW_BREAK):
            if quant:
                raise ValueError(f"{spec.code}: quantifier on a separator in {pattern!r}")
            tokens.append(_Token((), literal=head))
            continue
        if head == "L":
            choices, cls = tuple(spec.letters), _char_class(spec.letters)
        elif head == "D":
            choices, cls = tuple("0123456789"), "[0-9]"
        elif head == "Z":
            choices, cls = tuple("123456789"), "[1-9]"
        else:
            name = head[1:-1]
            pool = spec.pools.get(name, POOLS.get(name))
            if pool is None:
                raise ValueError(f"{spec.code}: unknown pool {name!r} in {pattern!r}")
            if isinstance(pool, Pool):
                choices = pool.values
                cls = pool.regex or "(?:" + "|".join(map(re.escape, pool.values)) + ")"
                cls = f"(?:{cls})"
            else:
                choices, cls = tuple(pool), _char_class(pool)
        for c in choices:
            if normalize_plate_text(c) != c or not c.isalnum() or not c.isascii():
                raise ValueError(f"{spec.code}: pool value {c!r} is not a normalised A-Z/0-9 label")
        rx = cls if (lo, hi) == (1, 1) else f"{cls}{{{lo},{hi}}}"
        tokens.append(_Token(choices, lo, hi, regex=rx, letter=head == "L"))
    return tokens


def _char_class(chars: str) -> str:
    return "[" + "".join(re.escape(c) for c in sorted(set(chars))) + "]"


@dataclass(frozen=True)
class CompiledCountry:
    spec: CountryFormats
    formats: tuple[tuple[CompiledFormat, ...], tuple[CompiledFormat, ...]]  # one-row, two-row
    cum_weights: tuple[tuple[float, ...], tuple[float, ...]]
    regex: re.Pattern
    more: tuple[CompiledFormat, ...] = ()  # CountryFormats.formats_more (one-row)
    more_cum: tuple[float, ...] = ()

    @property
    def has_two_rows(self) -> bool:
        return bool(self.formats[1])

    def pick(self, rows: int, u: Draws) -> CompiledFormat:
        fmts, cum = self.formats[rows - 1], self.cum_weights[rows - 1]
        if not fmts:
            raise ValueError(f"{self.spec.code} has no {rows}-row layout")
        return _pick(fmts, cum, u)

    def pick_more(self, u: Draws) -> CompiledFormat:
        """One of the further real formats (``CountryFormats.formats_more``); the country must have some."""
        if not self.more:
            raise ValueError(f"{self.spec.code} has no further formats")
        return _pick(self.more, self.more_cum, u)


def _pick(fmts: tuple[CompiledFormat, ...], cum: tuple[float, ...], u: Draws) -> CompiledFormat:
    x = u() * cum[-1]
    for f, c in zip(fmts, cum):
        if x < c:
            return f
    return fmts[-1]


def _cum(fmts: tuple[CompiledFormat, ...]) -> tuple[float, ...]:
    out, acc = [], 0.0
    for f in fmts:
        acc += f.fmt.weight
        out.append(acc)
    return tuple(out)


@lru_cache(maxsize=None)
def compiled(country: str) -> CompiledCountry:
    """The compiled formats of ``country`` (ValueError for a code outside COUNTRIES)."""
    code = country.upper() if isinstance(country, str) else country
    if code not in COUNTRY_FORMATS:
        raise ValueError(f"unknown country {country!r}; expected one of {', '.join(COUNTRIES)}")
    spec = COUNTRY_FORMATS[code]
    one = tuple(CompiledFormat(spec, f) for f in spec.formats)
    two = tuple(CompiledFormat(spec, f) for f in spec.formats2)
    more = tuple(CompiledFormat(spec, f) for f in spec.formats_more)
    for f in one + more:
        if f.rows != 1:
            raise ValueError(f"{code}: one-row format {f.fmt.pattern!r} has a row break")
    for f in two:
        if f.rows != 2:
            raise ValueError(f"{code}: two-row format {f.fmt.pattern!r} needs exactly one '|'")
    alts = "|".join(f"(?:{f.regex})" for f in one + two + more)
    return CompiledCountry(spec, (one, two), (_cum(one), _cum(two)), re.compile(f"(?:{alts})"), more, _cum(more))


def is_valid_plate_text(country: str, label: str) -> bool:
    """Whether ``label`` (normalised first) is a text one of ``country``'s formats can produce."""
    return compiled(country).regex.fullmatch(normalize_plate_text(label)) is not None


def plate_regex(country: str) -> re.Pattern:
    """The regular expression (on normalised labels, use ``fullmatch``) of ``country``'s formats."""
    return compiled(country).regex


def max_label_length(countries=None, two_rows: bool = True) -> int:
    """Longest label any format of ``countries`` (default: all) can produce."""
    best = 0
    for c in countries or COUNTRIES:
        cc = compiled(c)
        one, two = cc.formats
        for f in one + cc.more + (two if two_rows else ()):
            best = max(best, f.max_len)
    return best


_ALNUM = frozenset(LATIN + "0123456789")


def _regex_chars(rx: str) -> frozenset[str]:
    """Every label character a pool's regex can match, at any position (its classes and literals)."""
    out: set[str] = set()
    for cls in re.findall(r"\[([^\]]+)\]", rx):
        for a, b in re.findall(r"(\w)-(\w)", cls):
            out.update(chr(i) for i in range(ord(a), ord(b) + 1))
        out.update(re.sub(r"\w-\w", "", cls))
    out.update(re.sub(r"\[[^\]]*\]|\{[^}]*\}", "", rx))  # literals outside classes and quantifiers
    return frozenset(out) & _ALNUM


def _merge(a: dict[int, tuple[frozenset[str], ...]], n: int, sets: tuple[frozenset[str], ...]) -> None:
    old = a.get(n)
    a[n] = sets if old is None else tuple(x | y for x, y in zip(old, sets))


@lru_cache(maxsize=None)
def position_classes(country: str) -> dict[int, tuple[frozenset[str], ...]]:
    """Per label length, the characters each position of ``country``'s labels can hold: a
    superset (the union over its formats; a pool's positions take every character its regex
    can match), so a text that breaks it matches no format, a text that keeps it still needs
    the regex."""
    cc = compiled(country)
    out: dict[int, tuple[frozenset[str], ...]] = {}
    for f in cc.formats[0] + cc.formats[1] + cc.more:
        states: dict[int, tuple[frozenset[str], ...]] = {0: ()}
        for t in f.tokens:
            if not t.choices:
                continue
            by_len: dict[int, tuple[frozenset[str], ...]] = {}
            if t.regex.startswith("(?:"):  # a pool: its regex may accept more than its values
                wide = _regex_chars(t.regex)
                for v in t.choices:
                    _merge(by_len, len(v), tuple(wide for _ in v))
            else:
                for v in t.choices:
                    _merge(by_len, len(v), tuple(frozenset(ch) for ch in v))
            reps: dict[int, tuple[frozenset[str], ...]] = dict(states) if t.lo == 0 else {}
            cur = states
            for k in range(1, t.hi + 1):
                nxt: dict[int, tuple[frozenset[str], ...]] = {}
                for n, sets in cur.items():
                    for m, more in by_len.items():
                        if n + m <= f.max_len:
                            _merge(nxt, n + m, sets + more)
                cur = nxt
                if k >= t.lo:
                    for n, sets in cur.items():
                        _merge(reps, n, sets)
            states = reps
        for n, sets in states.items():
            if f.min_len <= n <= f.max_len:
                _merge(out, n, sets)
    return out

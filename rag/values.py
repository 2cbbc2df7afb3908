"""Numbers with units: the values a question gives (20 kg, CrCl 25 mL/min, 8 years old) and the bands
(ranges) a table row or sentence states (25 to < 36, eGFR between 30 and 45 mL/min/1.73 m2).

Written by hand: quantity parsers (pint, quantulum) know neither clinical units such as mL/min/1.73 m2
nor the way dosing tables print bands ('5 to < 15', '≥ 35').
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Value:
    """A number with its unit from the question."""

    number: float
    unit: str  # normalised: 'kg', 'mL/min', 'mL/min/1.73m2', 'years', 'months', 'weeks', 'days', 'mg', ...
    kind: str  # 'weight', 'renal' (CrCl / eGFR), 'age', 'dose', 'duration', 'share' (a percentage), 'other'
    text: str  # as written in the question


# A number: '2,000' (thousands), '2.5' or '2,5' (decimal comma), not the digits inside 'CYP2C9' or '1.73'.
NUM = r"(?<![\w.,/*])(?:\d{1,3}(?:,\d{3})+|\d+(?:[.,]\d+)?)(?![\d/]|[.,]\d)"
# The units recognised, each with its normalised spelling (the longest spellings first).
_UNITS = (
    (r"m[lL]\s*/\s*min(?:ute)?\s*/\s*1[.,]73\s*m(?:2|²|\^2)?", "mL/min/1.73m2"),
    (r"m[lL]\s*/\s*min(?:ute)?", "mL/min"),
    (r"mg\s*/\s*kg\s*/\s*(?:day|d)", "mg/kg/day"), (r"mg\s*/\s*kg", "mg/kg"), (r"mg\s*/\s*m2|mg\s*/\s*m²", "mg/m2"),
    (r"mg\s*/\s*day", "mg/day"), (r"mcg\s*/\s*kg|µg\s*/\s*kg", "mcg/kg"),
    (r"kg|kilograms?|kilos?", "kg"), (r"lbs?|pounds?", "lb"),
    (r"mg|milligrams?", "mg"), (r"mcg|µg|micrograms?", "mcg"), (r"g|grams?", "g"),
    (r"m[lL]|millilit(?:re|er)s?", "mL"), (r"units?|IU", "units"),
    (r"years?|yrs?", "years"), (r"months?|mos?", "months"), (r"weeks?|wks?", "weeks"), (r"days?", "days"),
    (r"hours?|hrs?|h", "hours"),
)
UNIT = re.compile("|".join(f"(?:{p})" for p, _ in _UNITS))
# A unit standing as a word (not the 'g' of 'weight' nor the 'h' of 'hydrochloride').
_UNIT_WORD = re.compile(rf"(?<![A-Za-z])(?:{UNIT.pattern})(?![A-Za-z])")
_UNIT_PARTS = [(re.compile(f"(?:{p})$"), n) for p, n in _UNITS]
# Each unit's dimension and its factor to the dimension's base (kg, mL/min, days, mg), so that bands and
# values compare across units ('6 months to < 2 years'). CrCl and eGFR are one dimension: labels dose
# by either, and a reader with one wants the band of the other rather than nothing.
DIMENSION = {
    "kg": ("weight", 1.0), "lb": ("weight", 0.45359237),
    "mL/min": ("renal", 1.0), "mL/min/1.73m2": ("renal", 1.0),
    "years": ("time", 365.25), "months": ("time", 30.4375), "weeks": ("time", 7.0), "days": ("time", 1.0),
    "hours": ("time", 1 / 24),
    "mg": ("mass", 1.0), "g": ("mass", 1000.0), "mcg": ("mass", 0.001),
    "mg/kg": ("mg/kg", 1.0), "mg/kg/day": ("mg/kg/day", 1.0), "mg/m2": ("mg/m2", 1.0), "mg/day": ("mg/day", 1.0),
    "mcg/kg": ("mg/kg", 0.001), "mL": ("volume", 1.0), "units": ("units", 1.0),
}
_KIND_OF_UNIT = {"weight": "weight", "renal": "renal", "time": "duration"}

_RENAL_LABEL = r"creatinine clearance|estimated glomerular filtration rate|glomerular filtration rate|crcl|clcr|e?gfr"
_RENAL = re.compile(rf"\b(?P<lab>{_RENAL_LABEL})\b(?:\s*\([^)]{{1,12}}\))?\s*(?:of|is|was|at|=|:|~|around|about|"
                    rf"approximately)?\s*(?P<num>{NUM})(?:\s*(?P<unit>{UNIT.pattern}))?", re.I)
_AGE_OLD = re.compile(rf"(?P<num>{NUM})[\s-]*(?P<unit>years?|yrs?|months?|weeks?|days?)[\s-]*(?:old|of age)\b", re.I)
_AGED = re.compile(rf"\b(?:aged?|age of|older than|younger than)\s*(?P<num>{NUM})"
                   r"(?:\s*(?P<unit>years?|yrs?|months?|weeks?|days?))?", re.I)
_QUANTITY = re.compile(rf"(?P<num>{NUM})\s*(?P<unit>{UNIT.pattern})(?!\w)", re.I)
_PERCENT = re.compile(rf"(?P<num>{NUM})\s?%")
_INR = re.compile(rf"\bINR\s*(?:of|is|was|=|:)?\s*(?P<num>{NUM})", re.I)
_GESTATION = re.compile(r"^(?:'|’)?\s*(?:of\s+|into\s+)?(?:gestation|pregnan)", re.I)
_AFTER_AGE = re.compile(r"^[\s-]*(?:old|baby|babies|infants?|child|children|boy|girl|son|daughter|toddler)\b", re.I)
_BEFORE_AGE = re.compile(r"\b(?:under|over|older than|younger than|below|above|aged?|children|child|infants?)\W*$",
                         re.I)


def parse_number(text: str) -> float:
    """A number as printed: thousands commas dropped, a decimal comma read as a point.

    Example: '2,000' -> 2000.0; '2,5' -> 2.5
    """
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        return float(text.replace(",", ""))
    return float(text.replace(",", "."))


def unit_name(written: str) -> str:
    """The normalised spelling of a unit as written ('' when it is none of UNIT's).

    Example: 'mL/minute/1.73 m' -> 'mL/min/1.73m2'; 'Kilograms' -> 'kg'
    """
    w = written.strip()
    for pattern, name in _UNIT_PARTS:
        if pattern.match(w) or pattern.match(w.lower()):
            return name
    return ""


def parse_values(text: str) -> tuple[Value, ...]:
    """The values a question gives, in reading order: a renal function, an age, a weight, a dose, a time.

    Example: 'CrCl of 25 in an 8-year-old of 20 kg' -> (Value(25.0, 'mL/min', 'renal', 'CrCl of 25'),
    Value(8.0, 'years', 'age', '8-year-old'), Value(20.0, 'kg', 'weight', '20 kg'))
    """
    found: list[tuple[int, int, Value]] = []

    def add(m: re.Match, value: Value) -> None:
        if not any(m.start() < e and s < m.end() for s, e, _ in found):
            found.append((m.start(), m.end(), value))

    for m in _RENAL.finditer(text):
        unit = unit_name(m.group("unit") or "")
        if unit not in ("mL/min", "mL/min/1.73m2"):
            unit = "mL/min" if re.match(r"c", m.group("lab"), re.I) else "mL/min/1.73m2"
        add(m, Value(parse_number(m.group("num")), unit, "renal", m.group(0)))
    for pattern in (_AGE_OLD, _AGED):
        for m in pattern.finditer(text):
            add(m, Value(parse_number(m.group("num")), unit_name(m.group("unit") or "years"), "age", m.group(0)))
    for m in _INR.finditer(text):
        add(m, Value(parse_number(m.group("num")), "INR", "other", m.group(0)))
    for m in _QUANTITY.finditer(text):
        add(m, _quantity(text, m))
    for m in _PERCENT.finditer(text):
        add(m, Value(parse_number(m.group("num")), "%", "share", m.group(0)))
    return tuple(v for _, _, v in sorted(found, key=lambda f: f[0]))


def _quantity(text: str, m: re.Match) -> Value:
    """A number with a unit, its kind read from the unit and the words around it."""
    number, unit = parse_number(m.group("num")), unit_name(m.group("unit"))
    if unit == "lb":  # compared in kilograms, as labels print weights
        number, unit = round(number * DIMENSION["lb"][1], 1), "kg"
    dim = DIMENSION[unit][0]
    kind = _KIND_OF_UNIT.get(dim, "dose")
    if dim == "time":
        if _GESTATION.match(text[m.end():]):
            kind = "other"
        elif _BEFORE_AGE.search(text[:m.start()]) or _AFTER_AGE.match(text[m.end():]) \
                or (unit == "years" and not _duration_context(text, m)):
            kind = "age"
    return Value(number, unit, kind, m.group(0))


def _duration_context(text: str, m: re.Match) -> bool:
    """'for 3 years', 'after 2 years', 'every 5 years': a time span, not an age."""
    return bool(re.search(r"\b(?:for|during|over|after|within|every|per|last(?:ed|ing)?|since|than|up to)\W*$",
                          text[:m.start()], re.I))


# A table row's first cell when it is one number with its unit ('25% 35-70% 50%', 'Bottle: 150 mL | ...'),
# not the start of a band ('15 to < 25').
_ROW_KEY = re.compile(rf"^(?:[^:|·\d]{{1,40}}:\s*)?(?P<num>{NUM})\s*(?P<unit>%|{UNIT.pattern})(?![A-Za-z])"
                      r"(?!\s*(?:to|through|-|–|—|<|≤)\s*\d)")


def row_key(row: str, value: Value) -> bool | None:
    """Whether a table row keyed by one value (its first cell) is keyed by the question's `value`: True or
    False when its first cell is one number in `value`'s unit, None otherwise.

    Example: ('25% 35-70% 50% 30-50% 25%', Value(25, '%', 'share', '25%')) -> True; the row '10% 20-40% ...' -> False
    """
    m = _ROW_KEY.match(row.strip())
    if not m or ("%" if m.group("unit") == "%" else unit_name(m.group("unit"))) != value.unit:
        return None
    return math.isclose(parse_number(m.group("num")), value.number)


# ---- bands ----

_SEP = r"\s*(?:(?:to|through|-|–|—)\s*(?P<lt>≤|<=|<|less than|under|below)?|(?P<lt2>≤|<=|<))\s*"
_U = rf"(?:\s*(?P<{{0}}>{UNIT.pattern})(?![A-Za-z]))?"
_BAND = re.compile(
    rf"\bbetween\s+(?P<ba>{NUM}){_U.format('bua')}\s*(?:and|to|-|–)\s*(?P<bb>{NUM}){_U.format('bub')}"
    rf"|(?P<ra>{NUM}){_U.format('rua')}{_SEP}(?P<rb>{NUM}){_U.format('rub')}"
    rf"|(?P<lop>≥|>=|=>|>|at least|more than|greater than|over|above|older than)\s*(?P<la>{NUM}){_U.format('lu')}"
    rf"|(?P<uop>≤|<=|=<|<|less than|fewer than|under|below|up to|younger than|not more than|no more than)"
    rf"\s*(?P<ua>{NUM}){_U.format('uu')}"
    rf"|(?P<pa>{NUM}){_U.format('pu')}\s+(?:or|and)\s+(?P<pop>more|over|above|older|greater|higher)\b",
    re.I)
# Words before a band that say what it measures, when the band prints no unit ('CrCl < 30').
_LABEL_UNIT = ((re.compile(rf"\b(?:{_RENAL_LABEL})\b[^\d<>≤≥]{{0,12}}$", re.I), "mL/min"),
               (re.compile(r"\b(?:body )?weigh(?:t|ing|s)\b[^\d<>≤≥]{0,12}$", re.I), "kg"),
               (re.compile(r"\bage[ds]?\b[^\d<>≤≥]{0,12}$", re.I), "years"))
# A table header names its unit in words or in brackets: 'Body weight (kg)', 'Age (years)', 'CrCl (mL/min)'.
_HINT_WORDS = ((re.compile(r"\bweigh", re.I), "kg"), (re.compile(rf"\b(?:{_RENAL_LABEL})\b", re.I), "mL/min"),
               (re.compile(r"\bage\b", re.I), "years"))
# The dimensions a table's first column measures its rows' bands in (a dose column has amounts, not bands).
_BAND_DIMENSIONS = ("weight", "renal", "time")


@dataclass(frozen=True)
class Band:
    """A range as a text prints it, in its dimension's base unit (inclusive flags per end)."""

    low: float
    high: float
    low_in: bool
    high_in: bool
    dimension: str

    def contains(self, x: float) -> bool:
        """Whether x (in the base unit) lies in the band."""
        above = x > self.low or (self.low_in and math.isclose(x, self.low))
        below = x < self.high or (self.high_in and math.isclose(x, self.high))
        return above and below


def band_contains(text: str, value: Value, unit_hint: str | None = None) -> bool | None:
    """Whether `text` states a band of `value`'s dimension that contains it: True or False when it
    states one or more such bands (any containing it is True), None when it states none.

    A band printed without a unit ('25 to < 36' in a weight table's row) takes the unit of the words
    before it ('CrCl < 30') or of `unit_hint` (the table's header, 'Body weight (kg)').
    Example: ('25 to < 36', Value(30, 'kg', 'weight', '30 kg'), 'Body weight (kg)') -> True;
    ('25 to < 36', Value(36, 'kg', ...), 'Body weight (kg)') -> False; ('500 mg', Value(30, 'kg', ...)) -> None
    """
    dim, factor = DIMENSION.get(value.unit, ("", 1.0))
    if not dim:
        return None
    x = value.number * factor
    bands = [b for b in bands_in(text, _hint_unit(unit_hint)) if b.dimension == dim]
    if not bands:
        return None
    return any(b.contains(x) for b in bands)


def bands_in(text: str, default_unit: str = "") -> list[Band]:
    """Every band `text` prints, converted to base units; unit-less ones take the unit of a label before
    them or `default_unit` (and are dropped when neither gives one).

    Example: ('CrCl 30 to 59 mL/min; ≥ 35', 'kg') -> [Band(30, 59, True, True, 'renal'),
    Band(35, inf, True, False, 'weight')]
    """
    out = []
    for m in _BAND.finditer(text):
        g = m.groupdict()
        label = next((u for p, u in _LABEL_UNIT if p.search(text[:m.start()])), "")
        if g["ba"] or g["ra"]:
            a, b = (g["ba"], g["bb"]) if g["ba"] else (g["ra"], g["rb"])
            ua = g["bua"] or g["rua"] or ""
            ub = g["bub"] or g["rub"] or ""
            unit_b = unit_name(ub) or unit_name(ua) or label or default_unit
            unit_a = unit_name(ua) or unit_b
            high_in = not (g["lt"] or g["lt2"])
            band = _band(parse_number(a), unit_a, True, parse_number(b), unit_b, high_in)
        elif g["lop"]:
            unit = unit_name(g["lu"] or "") or label or default_unit
            band = _band(parse_number(g["la"]), unit, g["lop"] in ("≥", ">=", "=>", "at least"), math.inf, unit, False)
        elif g["uop"]:
            unit = unit_name(g["uu"] or "") or label or default_unit
            inclusive = g["uop"].lower() in ("≤", "<=", "=<", "up to", "not more than", "no more than")
            band = _band(-math.inf, unit, False, parse_number(g["ua"]), unit, inclusive)
        else:
            unit = unit_name(g["pu"] or "") or label or default_unit
            band = _band(parse_number(g["pa"]), unit, True, math.inf, unit, False)
        if band is not None:
            out.append(band)
    return out


def _band(low: float, unit_low: str, low_in: bool, high: float, unit_high: str, high_in: bool) -> Band | None:
    """A Band in base units; None when a unit is unknown or the two ends differ in dimension."""
    if unit_low not in DIMENSION or unit_high not in DIMENSION:
        return None
    (d1, f1), (d2, f2) = DIMENSION[unit_low], DIMENSION[unit_high]
    if d1 != d2:
        return None
    return Band(low * f1, high * f2, low_in, high_in, d1)


def _hint_unit(hint: str | None) -> str:
    """The unit a table header gives its unit-less bands: the first weight, renal or age unit it names
    (in brackets or in words: 'Body weight (kg) | Dose (mg)' -> 'kg'), else its first unit ('' if none).

    Example: 'Age (years)' -> 'years'; 'Dose (mg)' -> 'mg'
    """
    if not hint:
        return ""
    units = [unit_name(m.group(0)) for m in _UNIT_WORD.finditer(hint)]
    for unit in units:
        if DIMENSION[unit][0] in _BAND_DIMENSIONS:
            return unit
    for pattern, unit in _HINT_WORDS:
        if pattern.search(hint):
            return unit
    return units[0] if units else ""

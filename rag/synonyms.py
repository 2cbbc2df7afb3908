"""Drug synonyms (international, US and brand names) and clinical word equivalents, offline.

The drug dictionary is the one drug-named-entity-recognition (MIT, Fast Data Science) ships in its wheel:
about 20,000 drugs with their INN/USAN, brand and salt names, compiled from DrugBank, MeSH, Wikipedia and
NHS data. Its file is read directly: importing the package would also build a fuzzy-matching index we do
not use and read a cache in the home folder. DRUG_SUPPLEMENT adds equivalences the dictionary lacks
(fixed-dose combinations such as Coartem, a few brand and British names); CLINICAL holds lay and
professional words that labels and guidelines use for the same thing (kidney / renal).
"""

from __future__ import annotations

import bz2
import importlib.util
import logging
import pickle
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag.errors import ConfigError

log = logging.getLogger(__name__)

PACKAGE = "drug-named-entity-recognition"
_DATA_FILE = "drug_ner_dictionary.pkl.bz2"

# Equivalences the packaged dictionary lacks or splits (checked against it, 2.0.9): one drug a row,
# its name first, then the other names it goes by. Each is a published INN/USAN/brand equivalence
# (WHO INN lists, FDA Orange Book, BNF names); a line may also join two of the dictionary's groups
# (it files co-trimoxazole apart from Bactrim's trimethoprim/sulfamethoxazole).
DRUG_SUPPLEMENT: tuple[tuple[str, ...], ...] = (
    ("artemether-lumefantrine", "artemether + lumefantrine", "artemether/lumefantrine",
     "artemether and lumefantrine", "coartem", "riamet", "co-artemether"),
    ("artesunate-amodiaquine", "artesunate + amodiaquine", "artesunate/amodiaquine", "asaq", "coarsucam"),
    ("artesunate-mefloquine", "artesunate + mefloquine", "artesunate/mefloquine"),
    ("artesunate-pyronaridine", "artesunate + pyronaridine", "pyronaridine-artesunate", "pyramax"),
    ("dihydroartemisinin-piperaquine", "dihydroartemisinin + piperaquine", "dihydroartemisinin/piperaquine",
     "eurartesim"),
    ("sulfadoxine-pyrimethamine", "sulfadoxine + pyrimethamine", "sulfadoxine/pyrimethamine", "fansidar"),
    ("atovaquone-proguanil", "atovaquone + proguanil", "atovaquone/proguanil", "atovaquone and proguanil",
     "malarone"),
    ("amoxicillin-clavulanate", "amoxicillin + clavulanic acid", "amoxicillin/clavulanate", "co-amoxiclav",
     "augmentin"),
    ("sulfamethoxazole-trimethoprim", "co-trimoxazole", "cotrimoxazole", "trimethoprim/sulfamethoxazole",
     "trimethoprim-sulfamethoxazole", "sulfamethoxazole + trimethoprim", "bactrim", "septra"),
    ("warfarin", "jantoven"),
    ("epinephrine", "adrenaline"),
    ("norepinephrine", "noradrenaline"),
    ("levothyroxine", "thyroxine", "l-thyroxine"),
    ("cephalexin", "cefalexin", "keflex"),
    ("ciprofloxacin", "cipro xr", "proquin xr"),
    ("metformin", "glucophage xr"),
    ("lisinopril", "qbrelis"),
    ("nitroglycerin", "glyceryl trinitrate"),
)

# Words that labels (US, professional) and guidelines or patients use for the same thing: one group a
# line. General medical vocabulary (US and British spelling, lay and professional terms).
CLINICAL = """
kidney | renal
kidney disease | kidney problem | renal impairment | renal insufficiency
kidney failure | renal failure
liver | hepatic
liver disease | liver problem | hepatic impairment | hepatic insufficiency
side effect | adverse reaction | adverse effect | adverse event
breastfeeding | breast-feeding | breast feeding | lactation | lactating | nursing mother
pregnant | pregnancy
child | children | pediatric | paediatric | kid
infant | baby | babies
newborn | neonate | neonatal
elderly | older adult | geriatric
heart attack | myocardial infarction
stroke | cerebrovascular accident
high blood pressure | hypertension
low blood pressure | hypotension
low blood sugar | hypoglycemia | hypoglycaemia
high blood sugar | hyperglycemia | hyperglycaemia
blood thinner | anticoagulant
bleeding | hemorrhage | haemorrhage
allergy | allergic reaction | hypersensitivity
overdose | overdosage
fever | pyrexia
painkiller | pain reliever | analgesic
diarrhea | diarrhoea
anemia | anaemia
edema | oedema
itching | pruritus
hives | urticaria
blood clot | thrombosis | thrombus
seizure | convulsion
vomiting | emesis
stomach | gastric | gastrointestinal
lung | pulmonary
heart | cardiac
"""

# A name of the dictionary counts only when it looks like one: letters, digits and single spaces, '-',
# '/' or ' + ' between (drops inverted index forms 'hydrochloride, metformin' and scraped markup).
_CLEAN = re.compile(r"^[a-z][a-z0-9]*(?:(?: |-|/| \+ )[a-z0-9]+)*$")
# Single-word names this short are mostly lab abbreviations of the source vocabularies (sgot, mrna).
_MIN_SINGLE = 4
# The longest name looked for in a text, in words.
_MAX_WORDS = 5
_TOKEN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Mention:
    """A drug (or clinical term) named in a text: the words as written, their span, every name of it."""

    text: str
    start: int
    end: int
    names: frozenset[str]
    canonical: str = ""


@dataclass(frozen=True)
class _Dictionary:
    to_canonical: dict[str, str]  # every lower-case name -> its drug's canonical name
    names: dict[str, frozenset[str]]  # canonical -> all its names, itself included
    first: dict[str, int]  # first word of a name -> the most words of a name starting with it


def names_of(word_or_phrase: str) -> frozenset[str]:
    """All lower-case names of a drug, itself included; empty when the text names no known drug.

    Example: 'Lipitor' -> frozenset({'lipitor', 'atorvastatin', 'atorvastatin calcium', ...})
    """
    d = _dictionary()
    c = d.to_canonical.get(_norm(word_or_phrase))
    return d.names[c] if c else frozenset()


def canonical(name: str) -> str | None:
    """The dictionary's name for a drug (the US adopted name where there is one), or None.

    Example: 'paracetamol' -> 'acetaminophen'; 'Glucophage' -> 'metformin'; 'kidney' -> None
    """
    return _dictionary().to_canonical.get(_norm(name))


def drug_mentions(text: str) -> list[Mention]:
    """The drugs a text names, longest name first at each place, left to right.

    Example: 'Is acetylsalicylic acid safe with Coumadin?' -> [Mention('acetylsalicylic acid', 3, 23,
    names_of('aspirin'), 'aspirin'), Mention('Coumadin', 34, 42, names_of('warfarin'), 'warfarin')]
    """
    d = _dictionary()
    return _scan(text, d.to_canonical.get, d.names, d.first)


def clinical_mentions(text: str) -> list[Mention]:
    """The clinical terms of CLINICAL a text uses, each with its group of equivalents (plurals folded).

    Example: 'Is it safe when breastfeeding with kidney problems?' -> [Mention('breastfeeding', ...,
    names={'breastfeeding', 'lactation', ...}), Mention('kidney problems', ..., names={'renal impairment', ...})]
    """
    to_group, groups, first = _clinical()
    return _scan(text, lambda s: to_group.get(s) or to_group.get(_singular(s)), groups, first, nested=True)


def _scan(text: str, lookup: Callable[[str], str | None], groups: dict[str, frozenset[str]],
          first: dict[str, int], nested: bool = False) -> list[Mention]:
    """Longest match of word n-grams (as written, then with single spaces) against `lookup`, left to
    right; `first` gives, per first word, the most words a name starting with it has (most words start
    none, so most places cost one dict look-up). `nested`: also the shorter names inside a match."""
    tokens = [(m.start(), m.end(), m.group(0).lower()) for m in _TOKEN.finditer(text)]
    out: list[Mention] = []
    i = 0
    while i < len(tokens):
        longest = min(first.get(tokens[i][2], 0), len(tokens) - i)
        step = 1
        for n in range(longest, 0, -1):
            start, end = tokens[i][0], tokens[i + n - 1][1]
            written = text[start:end]
            spaced = " ".join(t[2] for t in tokens[i:i + n])
            c = lookup(spaced) or (lookup(_norm(written)) if written.lower() != spaced else None)
            if c is not None:
                out.append(Mention(written, start, end, groups[c], c))
                if not nested:
                    step = n
                    break
        i += step
    return out


def _norm(s: str) -> str:
    """Lower case, single spaces, '+' spaced the way the dictionary writes it."""
    s = re.sub(r"\s*\+\s*", " + ", s.lower().strip())
    return re.sub(r"\s+", " ", s)


def _singular(s: str) -> str:
    """A light plural fold of every word ('kidney problems' -> 'kidney problem')."""
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in s.split())


@lru_cache(maxsize=1)
def _dictionary() -> _Dictionary:
    """The packaged dictionary with DRUG_SUPPLEMENT merged in, read once (about 1 s, tens of MB)."""
    raw = _load_package_data()
    groups: dict[str, set[str]] = defaultdict(set)
    for variant, canonicals in raw.items():
        v = _norm(variant)
        if not canonicals or not _CLEAN.match(v) or (" " not in v and len(v) < _MIN_SINGLE):
            continue
        c = _norm(canonicals[0])
        groups[c].update((v, c))
    to_canonical = {v: c for c, vs in groups.items() for v in vs}
    for line in ([_norm(n) for n in row] for row in DRUG_SUPPLEMENT):
        target = line[0]
        for name in line:
            old = to_canonical.get(name)
            if old is not None and old != target:  # join the dictionary's group for this name
                groups[target] |= groups.pop(old, set())
            groups[target].add(name)
        for v in groups[target]:
            to_canonical[v] = target
    names = {c: frozenset(vs) for c, vs in groups.items()}
    return _Dictionary(to_canonical, names, _first_words(to_canonical))


def _load_package_data() -> dict[str, list[str]]:
    """drug_variant_to_canonical from the package's pickled dictionary (a file of its installed wheel)."""
    spec = importlib.util.find_spec("drug_named_entity_recognition")  # locates it without importing it
    locations = spec.submodule_search_locations if spec else None
    path = Path(list(locations)[0]) / _DATA_FILE if locations else None
    if path is None or not path.is_file():
        raise ConfigError(f"drug synonyms: the package {PACKAGE} is not installed (its {_DATA_FILE} is "
                          f"missing); install it with `.venv/bin/pip install -e .` or `make setup`")
    with bz2.open(path, "rb") as f:
        # the file is the installed package's own data, not user input
        data = pickle.load(f)  # noqa: S301
    log.debug("drug dictionary: %d names from %s", len(data["drug_variant_to_canonical"]), path)
    return data["drug_variant_to_canonical"]


def _first_words(names: Iterable[str]) -> dict[str, int]:
    """First word -> the most words of a name that starts with it (words as _TOKEN cuts them)."""
    first: dict[str, int] = {}
    for name in names:
        words = _TOKEN.findall(name)
        if words and len(words) <= _MAX_WORDS:
            first[words[0]] = max(first.get(words[0], 0), len(words))
    return first


@lru_cache(maxsize=1)
def _clinical() -> tuple[dict[str, str], dict[str, frozenset[str]], dict[str, int]]:
    """CLINICAL as term -> its group's first term, and first term -> the group (plural-folded too)."""
    to_group: dict[str, str] = {}
    groups: dict[str, frozenset[str]] = {}
    for line in _lines(CLINICAL):
        groups[line[0]] = frozenset(line)
        for term in line:
            to_group[term] = line[0]
            to_group[_singular(term)] = line[0]
    # a plural adds an 's' at the end: to the first word only when it is the only one ('kidneys')
    return to_group, groups, _first_words([*to_group, *(t + "s" for t in to_group)])


def _lines(table: str) -> list[list[str]]:
    """The '|'-separated rows of a table string, normalised."""
    return [[_norm(p) for p in row.split("|") if p.strip()] for row in table.strip().splitlines() if row.strip()]

"""Default family, version label and document type of a PDF, from its file name and title."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

# Words that name the edition or the kind of leaflet rather than the subject; dropped from families,
# so 'fda_amoxicillin_tablets_2015.pdf' and 'fda_amoxicillin_highlights_2025.pdf' are one family.
_EDITION_WORDS = {
    "highlights", "label", "labeling", "labelling", "pi", "prescribing", "information", "tablets",
    "tablet", "capsules", "capsule", "final", "draft", "update", "updated", "revised", "rev", "version",
    "edition", "ed", "v", "new", "old", "latest", "current", "copy",
}
_YEAR = re.compile(r"(?<!\d)(19[5-9]\d|20\d\d)(?!\d)")


# Letters and digits of any script: Unicode \w without the underscore, which names use as a separator.
_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> list[str]:
    """NFKC-normalised, case-folded words of any script (a run of CJK characters is one word).

    Example: 'WHO_指南_高血压_2024' -> ['who', '指南', '高血压', '2024']
    """
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


@lru_cache(maxsize=65536)  # placing a new file derives the family of every stored file name
def derive_family(file_name: str) -> str:
    """Family key from a file name: its words in any script, years, edition words and numbers removed.

    Examples: 'fda_warfarin_label_2025.pdf' -> 'fda-warfarin';
    'WHO_指南_高血压_2024.pdf' -> 'who-指南-高血压'; 'формуляр_ünïcødé_药物.pdf' -> 'формуляр-ünïcødé-药物'
    """
    stem = re.sub(r"\.pdf$", "", file_name, flags=re.I)
    keep = [w for w in _words(stem) if not _YEAR.fullmatch(w) and w not in _EDITION_WORDS and not re.fullmatch(
        r"v?\d+(\.\d+)*|r\d+|rev\d+", w)]
    return "-".join(keep) or unicodedata.normalize("NFKC", stem).casefold()


# Title words that say what kind of document or dosage form it is, not what it is about: editions of
# one label are 'AMOXICILLIN tablet, film coated' and 'AMOXICILLIN capsules and ... for oral suspension'.
_NOT_SUBJECT = _EDITION_WORDS | {
    "a", "an", "and", "or", "of", "for", "the", "in", "on", "to", "with", "by", "use", "from", "at",
    "de", "la", "le", "les", "des", "du", "et", "en", "und", "der", "die", "das", "y", "el",
    "guideline", "guidelines", "guidance", "recommendation", "recommendations", "protocol", "policy",
    "standard", "standards", "summary", "statement", "consensus", "management", "treatment", "untitled",
    "film", "coated", "oral", "suspension", "solution", "injection", "injectable", "syrup", "cream",
    "ointment", "gel", "drops", "powder", "chewable", "dispersible", "delayed",
}
# Titles are versions of one another when MORE than half of the shorter title's subject words are in
# the other: a new edition keeps its subject (the drug or condition) while the wording around it
# changes, and one title is often a shortened form of the other (so the overlap coefficient, not
# Jaccard: 'Warfarin' ~ 'Warfarin sodium tablets'); "more than half" so that one shared word of two
# ('hypertension guideline' / 'diabetes guideline' after generic words, a publisher prefix) is not enough.
SIMILAR_TITLES = 0.5


def title_words(title: str) -> frozenset[str]:
    """The subject words of a title: any script, without numbers, stop words and form/edition words.

    Example: 'AMOXICILLIN - amoxicillin tablet, film coated' -> frozenset({'amoxicillin'})
    """
    return frozenset(w for w in _words(title) if not w.isdigit() and w not in _NOT_SUBJECT)


def title_similarity(a: str, b: str) -> float:
    """Share of the shorter title's subject words found in the other (0.0 when either has none).

    Known limit: a CJK title without spaces is one word, so its editions match only when that run is
    identical; a miss keeps both documents current and the ingest summary asks to confirm.
    Example: ('WARFARIN SODIUM TABLETS', 'Warfarin sodium') -> 1.0
    """
    x, y = title_words(a), title_words(b)
    if not x or not y:
        return 0.0
    return len(x & y) / min(len(x), len(y))


def similar_titles(a: str, b: str) -> bool:
    """True when the titles name the same subject (similarity above SIMILAR_TITLES).

    Example: ('Guideline on gout', 'Guideline on asthma') -> False
    """
    return title_similarity(a, b) > SIMILAR_TITLES


def derive_version(file_name: str, title: str, meta_year: str) -> str:
    """Version label: a year in the file name, else in the title, else the PDF's date, else today.

    Example: ('fda_warfarin_label_2025.pdf', '', '') -> '2025'
    """
    for text in (file_name, title):
        years = _YEAR.findall(text)
        if years:
            return years[-1]
    return meta_year or date.today().isoformat()


def version_key(label: str) -> tuple[int, ...]:
    """Sortable key of a version label: its numbers in order.

    Example: '2023-10 v2' -> (2023, 10, 2)
    """
    return tuple(int(x) for x in re.findall(r"\d+", label))


def derive_doc_type(file_name: str, title: str) -> str:
    """'formulary', 'label', 'guidance' or 'guideline', from keywords in the name and title.

    Example: ('who_essential_medicines_2023.pdf', '') -> 'formulary'
    """
    text = f"{file_name} {title}".lower().replace("_", " ")
    if re.search(r"formular|essential medicines|model list", text):
        return "formulary"
    if re.search(r"guidance for industry|\bguidance\b", text):
        return "guidance"
    if re.search(r"highlights|prescribing information|\blabel|drug facts|tablets|capsules|for oral use", text):
        return "label"
    return "guideline"


# FDA prescribing-information highlights open with this sentence; the product name is inside it.
_FDA_HIGHLIGHTS = re.compile(
    r"these highlights do not include all the information needed to use (?P<name>.+?) safely and effectively",
    re.I)


def clean_title(title: str) -> str:
    """A display title: the product named by FDA highlights boilerplate, else the first sentence of the
    PDF's title; at most 100 characters.

    Examples: 'WARFARIN SODIUM TABLETS. These highlights do not include...' -> 'WARFARIN SODIUM TABLETS';
    'These highlights do not include all the information needed to use METFORMIN HYDROCHLORIDE
    EXTENDED-RELEASE TABLETS safely and effectively. See ...' -> 'METFORMIN HYDROCHLORIDE EXTENDED-RELEASE TABLETS'
    """
    t = " ".join(title.split())
    product = _FDA_HIGHLIGHTS.match(t)
    if product:
        t = product.group("name")
    t = re.split(r"(?<=\w)\.\s+(?=[A-Z])", t, maxsplit=1)[0].rstrip(".")
    return t[:100].strip() or "Untitled"

"""Default family, version label and document type of a PDF, from its file name and title."""

from __future__ import annotations

import re
from datetime import date

# Words that name the edition or the kind of leaflet rather than the subject; dropped from families,
# so 'fda_amoxicillin_tablets_2015.pdf' and 'fda_amoxicillin_highlights_2025.pdf' are one family.
_EDITION_WORDS = {
    "highlights", "label", "labeling", "labelling", "pi", "prescribing", "information", "tablets",
    "tablet", "capsules", "capsule", "final", "draft", "update", "updated", "revised", "rev", "version",
    "edition", "ed", "v", "new", "old", "latest", "current", "copy",
}
_YEAR = re.compile(r"(?<!\d)(19[5-9]\d|20\d\d)(?!\d)")


def derive_family(file_name: str) -> str:
    """Family key from a file name: lower case, years and edition words removed.

    Example: 'fda_warfarin_label_2025.pdf' -> 'fda-warfarin'
    """
    stem = re.sub(r"\.pdf$", "", file_name, flags=re.I).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", stem) if w]
    keep = [w for w in words if not _YEAR.fullmatch(w) and w not in _EDITION_WORDS and not re.fullmatch(
        r"v?\d+(\.\d+)*|r\d+|rev\d+", w)]
    return "-".join(keep) or stem


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

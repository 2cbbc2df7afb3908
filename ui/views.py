"""Pure HTML builders for the app: every piece of document or user text is escaped before it is shown.

Document text is shown as text. A PDF can contain `<script>`, `<img onerror=...>` or markdown such as
`![x](http://tracker/)`; `safe()` turns all of it into inert characters. Every builder returns one line
of HTML without blank lines, so Streamlit's markdown treats it as a single raw HTML block and applies
no markdown syntax to it at all (the markdown escaping in `safe()` is the second line of defence).
"""

from __future__ import annotations

import json
import re

from rag.text import printed_row
from rag.types import Answer, Citation, Document, Hit

# Characters with a meaning in HTML, or in Streamlit markdown (links, emphasis, code, tables, LaTeX `$`,
# directives such as `:red[...]`), written as numeric character references in ONE pass so they stay
# literal (escaping HTML first and markdown second would break the `#` of `&#x27;`).
_ESCAPES = str.maketrans({c: f"&#{ord(c)};" for c in "&<>\"'\\`*_[]()#|~$:!{}"})
# Characters of passage shown either side of the quote on a card (the source view shows the whole page).
CARD_CONTEXT = 280
_SOFT_BREAK = re.compile(r"(?<=[^\s.:;!?])[ \t]*\n(?=[a-z(])")
_MARKER = re.compile(r"\[(\d+)\]")
_LEAD = re.compile(r"(.*?\[\d+\](?:\s*\[\d+\])*)", re.S)  # up to the first marker (or run of markers)

CSS = """<style>
.gqa-answer {font-size: 1.12rem; line-height: 1.6; margin: 0.2rem 0 0.6rem 0;}
.gqa-lead {font-size: 1.3rem; line-height: 1.5; font-weight: 500; margin: 0.2rem 0 0.5rem 0;}
.gqa-support {font-size: 1.0rem; line-height: 1.5; color: #333; margin: 0 0 0.6rem 0;}
.gqa-strong {background: #dbe8ff; color: #123f8c;}
.gqa-conditional {background: #efe4fb; color: #4b2a7a;}
.gqa-ref {font-size: 0.8em; font-weight: 600; color: #1f5fbf; white-space: nowrap;}
.gqa-head {font-size: 1.0rem; line-height: 1.4;}
.gqa-n {font-weight: 700; color: #1f5fbf; margin-right: 0.3rem;}
.gqa-meta {font-size: 0.85rem; color: #555; margin: 0.1rem 0 0.4rem 0;}
.gqa-passage {font-size: 0.93rem; line-height: 1.5; border-left: 3px solid #d0d7de; padding-left: 0.7rem;}
.gqa-passage mark {background: #fff3a3; padding: 0 0.1rem;}
.gqa-badge {display: inline-block; font-size: 0.72rem; font-weight: 700; padding: 0.05rem 0.45rem;
  border-radius: 0.6rem; margin-left: 0.4rem; vertical-align: middle; text-transform: uppercase;}
.gqa-current {background: #dcf5e3; color: #11632e;}
.gqa-superseded {background: #fde2d2; color: #8a3300;}
.gqa-ocr {background: #fff0c2; color: #6b4a00; text-transform: none;}
.gqa-notanswer {font-size: 0.72rem; font-weight: 700; color: #6b6b6b; text-transform: uppercase;
  letter-spacing: 0.03em;}
</style>"""


def safe(text: str) -> str:
    """Escape text for st.markdown(unsafe_allow_html=True): HTML and markdown become literal, newlines <br>.

    Example: '<b>2*3</b>\\nok' -> '&#60;b&#62;2&#42;3&#60;/b&#62;<br>ok'
    """
    escaped = text.translate(_ESCAPES)
    return escaped.replace("\r\n", "\n").replace("\n", "<br>")


def _fold_chars(text: str) -> tuple[str, list[int]]:
    """Lower-cased text without whitespace, and the original index of every character kept."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace():
            continue
        low = ch.lower()
        out.append(low)
        where.extend([i] * len(low))
    return "".join(out), where


def find_quote(text: str, quote: str) -> tuple[int, int] | None:
    """Character span of `quote` in `text`, ignoring whitespace and case (the verification rule).

    Example: ('Give 2 mg\\nonce daily.', '2 MG once') -> (5, 14); a paired table row is found by its
    printed cells: ('Adults | 10 mg', 'Group: Adults · Dose: 10 mg') -> (0, 14)
    """
    hay, where = _fold_chars(text)
    needle, _ = _fold_chars(quote)
    if not needle:
        return None
    k = hay.find(needle)
    if k < 0:
        row = printed_row(quote)  # a table row quoted with its labels: the page prints its cells
        return find_quote(text, row) if row else None
    return where[k], where[k + len(needle) - 1] + 1


def highlighted(text: str, quote: str | None) -> tuple[str, bool]:
    """Escaped text with the quote wrapped in <mark>, and whether the quote was found.

    Example: ('a <b> c', '<b>') -> ('a <mark>&#60;b&#62;</mark> c', True)
    """
    span = find_quote(text, quote) if quote else None
    if span is None:
        return safe(text), False
    s, e = span
    return f"{safe(text[:s])}<mark>{safe(text[s:e])}</mark>{safe(text[e:])}", True


def answer_html(text: str) -> str:
    """The answer with its [n] markers styled as references.

    Example: 'Give 5 mg. [1]' -> '<div class="gqa-answer">Give 5 mg&#46; ...' (markers as <span>)
    """
    return f'<div class="gqa-answer">{_marked(text)}</div>'


def lead_and_supports(text: str) -> tuple[str, str]:
    """An answer split after its first cited statement (the lead) from the statements that support it.

    Example: 'Give 5 mg daily. [1] Halve it in renal impairment. [2]' ->
        ('Give 5 mg daily. [1]', 'Halve it in renal impairment. [2]')
    """
    m = _LEAD.match(text)
    return (m.group(1).strip(), text[m.end():].strip()) if m else (text, "")


def recommendation_badge(fields: dict | None) -> str:
    """A WHO recommendation's strength and certainty as a badge ('' when the unit is not one).

    Example: {'strength': 'strong', 'certainty': 'moderate'} ->
        '<span class="gqa-badge gqa-strong">strong recommendation · moderate certainty</span>'
    """
    if not fields or not fields.get("strength"):
        return ""
    strength = str(fields["strength"])
    words = f"{strength} recommendation"
    if fields.get("certainty"):
        words += f" · {fields['certainty']} certainty"
    kind = "gqa-strong" if strength.startswith("strong") else "gqa-conditional"
    return f'<span class="gqa-badge {kind}">{safe(words)}</span>'


def lead_html(text: str, badge: str = "") -> str:
    """The answer as shown: the lead in large type (with its recommendation badge), the supporting
    statements under it.

    Example: 'Give 5 mg. [1] Stop. [2]' -> '<div class="gqa-answer"><div class="gqa-lead">Give 5 mg.
        <span class="gqa-ref">[1]</span></div><div class="gqa-support">Stop. <span ...>[2]</span></div></div>'
    """
    lead, rest = lead_and_supports(text)
    support = f'<div class="gqa-support">{_marked(rest)}</div>' if rest else ""
    return f'<div class="gqa-answer"><div class="gqa-lead">{_marked(lead)}{badge}</div>{support}</div>'


def _marked(text: str) -> str:
    """Escaped text with its [n] markers styled as references."""
    parts = _MARKER.split(text)
    return "".join(f'<span class="gqa-ref">[{int(p)}]</span>' if i % 2 else safe(p) for i, p in enumerate(parts))


def status_badge(status: str) -> str:
    """A coloured badge: green for current, orange for superseded.

    Example: 'current' -> '<span class="gqa-badge gqa-current">current</span>'
    """
    kind = "gqa-current" if status == "current" else "gqa-superseded"
    return f'<span class="gqa-badge {kind}">{safe(status)}</span>'


OCR_BADGE = "OCR text: check against the page"


def ocr_badge() -> str:
    """The badge on a passage read by OCR (ingest --ocr), whose characters may be misread.

    Example: -> '<span class="gqa-badge gqa-ocr">OCR text&#58; check against the page</span>'
    """
    return f'<span class="gqa-badge gqa-ocr">{safe(OCR_BADGE)}</span>'


def page_words(page: int, label: str) -> str:
    """PDF page and printed label, in words.

    Example: (3, '2') -> 'PDF page 3 (printed page 2)'
    """
    if label and label != str(page):
        return f"PDF page {page} (printed page {label})"
    return f"PDF page {page}"


def card_head_html(doc: Document, n: int | None, ocr: bool = False) -> str:
    """Citation number (or 'not an answer' label), document title, status badge and, for text read by
    OCR, the OCR badge."""
    lead = f'<span class="gqa-n">[{n}]</span>' if n is not None else (
        '<span class="gqa-notanswer">Related passage - not an answer</span><br>')
    badges = status_badge(doc.status) + (ocr_badge() if ocr else "")
    return f'<div class="gqa-head">{lead}<b>{safe(doc.title)}</b>{badges}</div>'


def card_meta_html(doc: Document, page: int, label: str, section: str) -> str:
    """Version, ingest date, page and section path in small print."""
    bits = [f"Version {safe(doc.version)}"]
    if doc.ingested_at:
        bits.append(f"indexed {safe(doc.ingested_at[:10])}")
    if doc.status != "current" and doc.superseded_by:
        bits.append(f"superseded by {safe(doc.superseded_by)}")
    bits.append(safe(page_words(page, label)))
    if section:
        bits.append(f"Section {safe(section)}")
    bits.append(safe(doc.file_name))
    return f'<div class="gqa-meta">{" &middot; ".join(bits)}</div>'


def reflow(text: str) -> str:
    """Join PDF line breaks inside sentences (next line starts in lower case) so that page text reads as prose.

    Headings, list items and table rows start with a capital, digit or dash and keep their line.
    Example: 'in adults 18 years and\nover.\n2 Scope' -> 'in adults 18 years and over.\n2 Scope'
    """
    return _SOFT_BREAK.sub(" ", text)


def excerpt(text: str, span: tuple[int, int] | None, context: int) -> tuple[str, tuple[int, int] | None]:
    """About `context` characters either side of `span` (whole words), and the span in the excerpt.

    Without a span, the start of the text. Example: ('aa bb cc dd ee', (6, 8), 3) -> ('… bb cc dd …', (5, 7))
    """
    s, e = span if span else (0, 0)
    lo, hi = max(0, s - context), min(len(text), e + context if span else 2 * context)
    while lo > 0 and not text[lo - 1].isspace():
        lo -= 1
    while hi < len(text) and not text[hi].isspace():
        hi += 1
    head, tail = ("… " if lo > 0 else ""), (" …" if hi < len(text) else "")
    moved = None if span is None else (s - lo + len(head), e - lo + len(head))
    return head + text[lo:hi] + tail, moved


def passage_html(text: str, quote: str | None, context: int | None = None) -> str:
    """A passage (or a whole page) with the quote highlighted; the quote shown apart if not found in it.

    With `context`, only that many characters either side of the quote are shown.
    """
    if context is not None:
        text, _ = excerpt(text, find_quote(text, quote) if quote else None, context)
    body, found = highlighted(text, quote)
    html_ = f'<div class="gqa-passage">{body}</div>'
    if quote and not found:
        html_ = f'<div class="gqa-passage"><mark>{safe(quote)}</mark></div>' + html_
    return html_


def citation_parts(c: Citation) -> tuple[str, str, str]:
    """Head, meta and passage HTML of one citation card."""
    h = c.hit
    return (card_head_html(h.doc, c.n, h.chunk.ocr),
            card_meta_html(h.doc, h.chunk.page, h.chunk.page_label, h.chunk.section),
            passage_html(h.chunk.text, c.quote, CARD_CONTEXT))


def related_parts(h: Hit) -> tuple[str, str, str]:
    """Head, meta and passage HTML of a related passage shown under an abstention."""
    return (card_head_html(h.doc, None, h.chunk.ocr),
            card_meta_html(h.doc, h.chunk.page, h.chunk.page_label, h.chunk.section),
            passage_html(h.chunk.text, None, CARD_CONTEXT))


def small_print(answer: Answer, filters_text: str) -> str:
    """Which generator answered, retrieval and answer times, index version and filters (plain text).

    Example: -> 'Answered by the extractive generator · retrieval 12.0 ms · answer 3.1 ms · index ab12 · all documents'
    """
    t = answer.timings_ms or {}
    return (f"Answered by the {answer.generator} generator · retrieval {t.get('retrieve', 0):.0f} ms · "
            f"answer {t.get('answer', 0):.0f} ms · index {answer.index_version or 'unknown'} · {filters_text}")


def note_html(text: str) -> str:
    """Plain text as escaped small print (st.caption would apply markdown to document names).

    Example: 'a_b' -> '<div class="gqa-meta">a&#95;b</div>'
    """
    return f'<div class="gqa-meta">{safe(text)}</div>'


def filters_words(families: tuple[str, ...], doc_types: tuple[str, ...], include_superseded: bool) -> str:
    """The active filters in words.

    Example: (('a',), (), False) -> 'families: a · current versions only'
    """
    bits = []
    if families:
        bits.append("families: " + ", ".join(families))
    if doc_types:
        bits.append("types: " + ", ".join(doc_types))
    bits.append("superseded versions included" if include_superseded else "current versions only")
    return " · ".join(bits)


def cited_words(citations_json: str) -> list[str]:
    """Stored citations in words, for the feedback table.

    Example: '[{"n": 1, "doc": "a.pdf", "page": 3}]' -> ['[1] a.pdf p.3']
    """
    return [f"[{c.get('n')}] {c.get('doc')} p.{c.get('page')}" for c in json.loads(citations_json or "[]")]

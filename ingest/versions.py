"""Which family a new document joins and which document of each family is served.

A new file joins an existing family only on strong evidence: an explicit `--family`, or a family
derived from its name AND a title similar to a document already there (ingest.naming.similar_titles).
Otherwise it starts a family of its own, so that nothing is un-served by a coincidence of file names,
and the ingest summary asks the knowledge team to confirm.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ingest.naming import SIMILAR_TITLES, derive_family, title_similarity, title_words, version_key
from rag.types import Document

if TYPE_CHECKING:  # the pipeline imports this module
    from ingest.pipeline import IngestReport, _Prepared

WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class Placement:
    """The family a new document joins, why, and the document it may be a new version of."""

    family: str
    reason: str = ""  # why it joined an existing family ('' when it starts one)
    possible_version_of: Document | None = None  # same name-derived family, unrelated title


def place(doc: Document, explicit: bool, others: list[Document]) -> Placement:
    """Choose `doc`'s family among `others` (every known document, withdrawn ones included).

    Withdrawn documents count here, so that reinstating one never puts two unrelated documents in
    one family. `doc.family` is the family given by `--family` (explicit) or derived from its name.
    """
    if explicit:
        joined = [o for o in others if o.family == doc.family]
        return Placement(doc.family, f"--family {doc.family} given" if joined else "")
    kin = [o for o in others if o.family == doc.family or derive_family(o.file_name) == doc.family]
    if not kin:
        return Placement(doc.family)
    # the most similar, then the highest version, then the latest one listed
    score, _, _, best = max((title_similarity(doc.title, o.title), version_key(o.version), i, o)
                            for i, o in enumerate(kin))
    if score > SIMILAR_TITLES:
        return Placement(best.family, f"file names of one family ({doc.family}) and similar titles "
                                      f"({score:.2f}: {doc.title!r} / {best.title!r} of {best.file_name})")
    taken = {o.family for o in others}
    return Placement(_own_family(doc, taken), possible_version_of=best)


def _own_family(doc: Document, taken: set[str]) -> str:
    """The derived family if free, else it plus the title's own subject words (or the doc id).

    Example: doc 'acme_guide_2025.pdf' titled 'Gout', family 'acme-guide' taken -> 'acme-guide-gout'
    """
    if doc.family not in taken:
        return doc.family
    parts = set(doc.family.split("-"))
    extra = sorted(w for w in title_words(doc.title) if w not in parts)[:3]
    family = "-".join([doc.family, *extra])
    return family if extra and family not in taken else f"{doc.family}-{doc.doc_id[:6]}"


def resolve(docs: list[Document]) -> dict[str, tuple[str, str | None]]:
    """doc_id -> (status, superseded_by): withdrawn documents stay withdrawn and take no part; of the
    rest, the highest version label of each family is current (ties: the later in `docs`), the others
    are superseded by it.

    Example: [a (fam f, 2020), b (fam f, 2024)] -> {a: ('superseded', b.file_name), b: ('current', None)}
    """
    current: dict[str, tuple[tuple[int, ...], int, Document]] = {}
    for i, d in enumerate(docs):
        if d.status == WITHDRAWN:
            continue
        key = (version_key(d.version), i, d)
        best = current.get(d.family)
        if best is None or key[:2] >= best[:2]:
            current[d.family] = key
    out: dict[str, tuple[str, str | None]] = {}
    for d in docs:
        if d.status == WITHDRAWN:
            out[d.doc_id] = (WITHDRAWN, None)
            continue
        win = current[d.family][2]
        out[d.doc_id] = ("current", None) if win.doc_id == d.doc_id else ("superseded", win.file_name)
    return out


def resolve_versions(existing: list[Document], prepared: list[_Prepared], report: IngestReport
                     ) -> tuple[list[Document], dict[str, tuple[str, str | None]]]:
    """Place each new document in a family (ingest.versions.place), then serve the highest version of
    each family (ingest.versions.resolve); report each supersede with its reason and each possible
    version that was kept apart."""
    placed: list[Document] = []
    reasons: dict[str, str] = {}
    for p in prepared:
        where = place(p.doc, p.explicit_family, list(existing) + placed)
        placed.append(replace(p.doc, family=where.family))
        reasons[p.doc.doc_id] = where.reason
        if where.possible_version_of is not None:
            p.hint = where.possible_version_of
    everyone = list(existing) + placed
    decided = resolve(everyone)
    changes = {d.doc_id: decided[d.doc_id] for d in existing if (d.status, d.superseded_by) != decided[d.doc_id]}
    final = [replace(d, status=decided[d.doc_id][0], superseded_by=decided[d.doc_id][1]) for d in everyone]
    fresh = final[len(existing):]
    for p, d in zip(prepared, fresh, strict=True):
        p.doc = d
        kin = [q for q in fresh if q.family == d.family and q.doc_id != d.doc_id]
        # the evidence that put these documents in one family: this one's, else a batch partner's
        reason = reasons[d.doc_id] or next((reasons[q.doc_id] for q in kin if reasons[q.doc_id]), "")
        entry: dict = {"file": p.source, "family": d.family, "version": d.version, "status": d.status}
        older = _now_superseded(d, existing, changes) + [q.file_name for q in kin]
        if older and d.status == "current":
            report.new_version.append({**entry, "supersedes": older, "reason": reason})
        elif d.status != "current":
            report.added.append({**entry, "superseded_by": d.superseded_by, "reason": reason})
        elif p.hint is not None:
            report.added.append({**entry, "possible_version_of": p.hint.file_name, "possible_family": p.hint.family,
                                 "hint": f"possible new version of {p.hint.file_name}; confirm with "
                                         f"--family {p.hint.family}"})
        else:
            report.added.append(entry)
    return final, changes


def _now_superseded(d: Document, existing: list[Document], changes: dict[str, tuple[str, str | None]]
                    ) -> list[str]:
    """File names of `existing` documents that were current and are superseded by `d` now."""
    return [e.file_name for e in existing if e.status == "current" and e.doc_id != d.doc_id
            and changes.get(e.doc_id, ("current", None)) == ("superseded", d.file_name)]


def regroup(existing: list[Document], report: IngestReport, family: str | None
            ) -> tuple[list[Document], dict[str, str]]:
    """Known bytes ingested again with `--family` move to that family (how a possible version is
    confirmed); returns the documents as moved and {doc_id: previous family}."""
    if family is None:
        return existing, {}
    ids = {e.get("doc_id") for e in report.unchanged}
    moved = {d.doc_id: d.family for d in existing if d.doc_id in ids and d.family != family}
    return [replace(d, family=family) if d.doc_id in moved else d for d in existing], moved


def report_moves(report: IngestReport, moved: dict[str, str], before: list[Document], after: list[Document],
                 changes: dict[str, tuple[str, str | None]]) -> None:
    """Say on each moved `unchanged` entry where it came from and what it now supersedes."""
    by_id = {d.doc_id: d for d in after}
    for e in report.unchanged:
        d = by_id.get(e.get("doc_id", ""))
        if d is None or d.doc_id not in moved:
            continue
        e.update({"family": d.family, "moved_from": moved[d.doc_id], "status": d.status})
        reason = f"--family {d.family} given"
        older = _now_superseded(d, before, changes)
        if d.status == "current" and older:
            e.update({"supersedes": older, "reason": reason})
        elif d.status == "superseded":
            e.update({"superseded_by": d.superseded_by, "reason": reason})


def withdrawal_fields(doc: Document, events: list[dict]) -> dict:
    """What `docs` and the knowledge-team page show of a document's withdrawals: the standing one
    (who, when, why; None unless withdrawn) and every withdraw and reinstate, oldest first.

    Example: (withdrawn doc, [{'action': 'withdraw', 'by': 'ana', 'at': 'T', 'reason': 'R', ...}])
    -> {'withdrawn_by': 'ana', 'withdrawn_at': 'T', 'withdrawn_reason': 'R', 'history': [...]}
    """
    mine = [{k: e[k] for k in ("action", "by", "at", "reason", "generation")} for e in events
            if e["doc_id"] == doc.doc_id]
    last = next((e for e in reversed(mine) if e["action"] == "withdraw"), None) if doc.status == WITHDRAWN else None
    return {"withdrawn_by": last and last["by"], "withdrawn_at": last and last["at"],
            "withdrawn_reason": last and last["reason"], "history": mine}


def version_note(e: dict) -> str:
    """The detail of an ingest entry: its version, what it supersedes or is superseded by and why,
    or the hint that it may be a new version.

    Example: {'version': '2025', 'family': 'f', 'supersedes': ['a.pdf'], 'reason': 'R'}
    -> 'version 2025, family f, supersedes a.pdf (R)'
    """
    note = f"version {e['version']}, family {e['family']}"
    why = f" ({e['reason']})" if e.get("reason") else ""
    if e.get("supersedes"):
        return f"{note}, supersedes {', '.join(e['supersedes'])}{why}"
    if e.get("superseded_by"):
        return f"{note}, older than current {e['superseded_by']}{why}"
    if e.get("hint"):
        return f"{note}; {e['hint']}"
    return note

"""Bad inputs: each fails with a message naming the file and the problem; good files still get published."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from docgen import encrypted, guide, scanned, truncated

from ingest.extract import BadDocument, extract_pdf
from ingest.pipeline import ingest
from rag.engine import Engine
from rag.retrieve import Filters
from rag.snapshot import database_path, load_snapshot, published_generation
from rag.store import Store

QUERY = "warfarin anticoagulant INR bleeding"
WARFARIN = Filters(families=("acme-warfarin",))


def make_corrupt(tmp: Path, first: Path) -> Path:
    p = tmp / "corrupt.pdf"
    p.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    return p


def make_truncated(tmp: Path, first: Path) -> Path:
    return truncated(guide(tmp / "src" / "whole.pdf", "asthma"), tmp / "truncated.pdf")


def make_encrypted(tmp: Path, first: Path) -> Path:
    return encrypted(guide(tmp / "src" / "plain.pdf", "asthma"), tmp / "locked.pdf")


def make_scanned(tmp: Path, first: Path) -> Path:
    return scanned(tmp / "scanned.pdf", tmp)


def make_empty(tmp: Path, first: Path) -> Path:
    p = tmp / "empty.pdf"
    p.write_bytes(b"")
    return p


def make_not_pdf(tmp: Path, first: Path) -> Path:
    p = tmp / "minutes.pdf"
    p.write_text("Meeting minutes, plain text saved with a .pdf name.\n" * 20)
    return p


def make_empty_folder(tmp: Path, first: Path) -> Path:
    d = tmp / "no-pdfs-here"
    d.mkdir()
    (d / "readme.txt").write_text("nothing to ingest")
    return d


def make_missing(tmp: Path, first: Path) -> Path:
    return tmp / "does" / "not" / "exist.pdf"


def make_wrong_extension(tmp: Path, first: Path) -> Path:
    p = tmp / "notes.docx"
    p.write_bytes(b"PK\x03\x04 not a pdf")
    return p


# (maker, words the error must contain, whether the error text itself names the file)
CASES: dict[str, tuple[Callable[[Path, Path], Path], str, bool]] = {
    "corrupt": (make_corrupt, "corrupt or truncated PDF", True),
    "truncated": (make_truncated, "corrupt or truncated PDF", True),
    "encrypted": (make_encrypted, "encrypted PDF; a password is required", True),
    "scanned": (make_scanned, "no extractable text; OCR is not supported", True),
    "empty": (make_empty, "empty file (0 bytes)", True),
    "not_pdf": (make_not_pdf, "not a PDF", True),
    "empty_folder": (make_empty_folder, "folder contains no PDF files", False),
    "missing": (make_missing, "path does not exist", False),
    "wrong_extension": (make_wrong_extension, "not a PDF file name (.docx)", False),
}


@pytest.fixture
def published(tmp_path: Path, settings, hash_embedder):
    """A home with one warfarin guideline published, and the answer to QUERY before anything else happens."""
    first = guide(tmp_path / "first" / "acme_warfarin_2024.pdf", "warfarin")
    report = ingest([first], settings, hash_embedder)
    assert report.failed == [] and report.generation
    before = [(h.chunk.chunk_id, round(h.score, 5)) for h in Engine(settings, hash_embedder).retrieve(QUERY, k=5)]
    assert before
    return first, report.generation, before


def answers(settings, embedder, filters: Filters | None = None) -> list[tuple[str, float]]:
    hits = Engine(settings, embedder).retrieve(QUERY, k=5, filters=filters)
    return [(h.chunk.chunk_id, round(h.score, 5)) for h in hits]


def doc_names(settings) -> set[str]:
    store = Store(database_path(settings.home))
    try:
        return {d.file_name for d in store.documents()}
    finally:
        store.close()


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_alone_and_good_file_is_published(
    case: str, tmp_path: Path, settings, hash_embedder, published
) -> None:
    first, first_gen, before = published
    make, words, names_itself = CASES[case]
    bad = make(tmp_path, first)
    good = guide(tmp_path / "good" / "acme_gout_2024.pdf", "gout")
    report = ingest([bad, good], settings, hash_embedder)

    assert len(report.failed) == 1, report.failed
    entry = report.failed[0]
    assert set(entry) == {"file", "error"}
    assert entry["file"] == str(bad)
    assert words in entry["error"]
    if names_itself:
        assert entry["error"].startswith(f"{bad.name}: ")
    # the good file in the same batch is ingested and published
    assert [Path(e["file"]).name for e in report.added] == [good.name]
    assert report.generation and report.generation != first_gen
    assert published_generation(settings.home) == report.generation
    assert doc_names(settings) == {first.name, good.name}
    hits = Engine(settings, hash_embedder).retrieve("gout urate allopurinol colchicine flare", k=1)
    assert hits[0].doc.file_name == good.name
    # what was published before still answers the same way
    assert answers(settings, hash_embedder, WARFARIN) == before


def test_all_bad_batch_keeps_the_published_index(tmp_path: Path, settings, hash_embedder, published) -> None:
    first, first_gen, before = published
    bad = [make(tmp_path, first) for make, _, _ in CASES.values()]
    report = ingest(bad, settings, hash_embedder)
    assert sorted(e["file"] for e in report.failed) == sorted(str(b) for b in bad)
    assert report.added == [] and report.new_version == [] and report.generation is None
    assert published_generation(settings.home) == first_gen
    snap = load_snapshot(settings.home, hash_embedder.id)
    assert snap.gen_id == first_gen
    assert answers(settings, hash_embedder) == before
    assert doc_names(settings) == {first.name}


def test_failed_file_can_be_ingested_once_fixed(tmp_path: Path, settings, hash_embedder) -> None:
    """A failure leaves no trace: the same name with good bytes is then ingested normally."""
    target = tmp_path / "acme_asthma_2024.pdf"
    target.write_bytes(b"")
    assert ingest([target], settings, hash_embedder).failed
    guide(target, "asthma")
    report = ingest([target], settings, hash_embedder)
    assert report.failed == [] and [Path(e["file"]).name for e in report.added] == [target.name]


@pytest.mark.parametrize("case", ["corrupt", "truncated", "encrypted", "scanned", "empty", "not_pdf"])
def test_extract_raises_bad_document(case: str, tmp_path: Path) -> None:
    make, words, _ = CASES[case]
    bad = make(tmp_path, tmp_path / "unused.pdf")
    with pytest.raises(BadDocument) as info:
        extract_pdf(bad)
    message = str(info.value)
    assert message.startswith(f"{bad.name}: ") and words in message
    assert "\n" not in message and len(message) <= 300


def test_encrypted_with_empty_user_password_is_read(tmp_path: Path) -> None:
    """Owner-password-only PDFs (common for labels) open without a password and are ingested."""
    from pypdf import PdfWriter

    src = guide(tmp_path / "src.pdf", "gout")
    w = PdfWriter(clone_from=str(src))
    w.encrypt(user_password="", owner_password="owner-only")
    dst = tmp_path / "owner_locked.pdf"
    with open(dst, "wb") as fh:
        w.write(fh)
    ext = extract_pdf(dst)
    assert "allopurinol" in " ".join(p.text for p in ext.pages)

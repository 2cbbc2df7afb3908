"""Versions that cannot silently un-serve a guideline: Unicode families, supersede only on strong
evidence, and the knowledge team's undo (withdraw / reinstate)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CORPUS, needs_corpus
from docgen import guide
from fakes import HashEmbedder

from cli.main import main
from ingest.naming import SIMILAR_TITLES, clean_title, derive_family, similar_titles, title_similarity, title_words
from ingest.pipeline import ingest, ingest_lock
from ingest.versions import resolve
from ingest.withdraw import reinstate, withdraw
from rag.engine import Engine
from rag.errors import GQAError
from rag.index import generations_dir
from rag.retrieve import Filters
from rag.snapshot import database_path, load_snapshot, published_generation
from rag.store import Store
from rag.types import Document


def documents(settings) -> dict[str, Document]:
    store = Store(database_path(settings.home))
    try:
        return {d.file_name: d for d in store.documents()}
    finally:
        store.close()


def served(engine: Engine, query: str, **flt) -> set[str]:
    return {h.doc.file_name for h in engine.retrieve(query, k=50, filters=Filters(**flt))}


# --- families and titles: known answers -----------------------------------------------------------------
@pytest.mark.parametrize(("name", "family"), [
    ("WHO_指南_高血压_2024.pdf", "who-指南-高血压"),
    ("WHO_指南_糖尿病_2025.pdf", "who-指南-糖尿病"),
    ("формуляр_ünïcødé_药物.pdf", "формуляр-ünïcødé-药物"),
    ("ＦＤＡ_Warfarin_Label_2025.PDF", "fda-warfarin"),  # NFKC: full-width letters are the ASCII ones
    ("Leitlinie_Straße_v3.pdf", "leitlinie-strasse"),  # casefold, not lower: ß is ss
    # existing homes store these families: the Unicode rules must not move them
    ("fda_warfarin_label_2025.pdf", "fda-warfarin"),
    ("fda_warfarin_highlights_2022.pdf", "fda-warfarin"),
    ("fda_amoxicillin_tablets_2015.pdf", "fda-amoxicillin"),
    ("fda_amoxicillin_highlights_2025.pdf", "fda-amoxicillin"),
    ("Guideline-Asthma_v2.pdf", "guideline-asthma"),
])
def test_family_known_answers(name: str, family: str) -> None:
    assert derive_family(name) == family


@pytest.mark.parametrize(("a", "b", "score"), [
    # the corpus pairs' cleaned titles (read from the PDFs): editions of one label
    ("AMOXICILLIN - amoxicillin tablet, film coated", "AMOXICILLIN capsules and AMOXICILLIN for oral suspension", 1.0),
    ("WARFARIN SODIUM TABLETS", "WARFARIN SODIUM TABLETS", 1.0),
    ("Warfarin", "Warfarin sodium tablets", 1.0),  # a shortened title is still the same subject
    ("Hypertension in adults: diagnosis and management", "Guideline on hypertension in adults", 1.0),
    ("Guideline on gout", "Guideline on warfarin", 0.0),
    ("Hypertension guideline for clinics", "Diabetes guideline for clinics", 0.5),  # one of two: not enough
    ("高血压指南", "糖尿病指南", 0.0),
    ("Untitled", "Untitled", 0.0),  # no subject words: no evidence
])
def test_title_similarity_known_answers(a: str, b: str, score: float) -> None:
    assert title_similarity(a, b) == pytest.approx(score)
    assert similar_titles(a, b) is (score > SIMILAR_TITLES)


def test_title_words_drop_forms_numbers_and_stop_words() -> None:
    assert title_words("AMOXICILLIN - amoxicillin tablet, film coated") == {"amoxicillin"}
    assert title_words("Formulário Nacional 2024 de Medicamentos") == {"formulário", "nacional", "medicamentos"}


@pytest.mark.slow  # extracts four real PDFs (about 12 s on 2 cores)
@needs_corpus
@pytest.mark.parametrize(("old", "new"), [
    ("fda_amoxicillin_tablets_2015.pdf", "fda_amoxicillin_highlights_2025.pdf"),
    ("fda_warfarin_highlights_2022.pdf", "fda_warfarin_label_2025.pdf"),
])
def test_corpus_version_pairs_have_similar_titles(old: str, new: str) -> None:
    from ingest.extract import extract_pdf

    a, b = (clean_title(extract_pdf(CORPUS / n).title) for n in (old, new))
    assert derive_family(old) == derive_family(new)
    assert similar_titles(a, b), (a, b)


def test_resolve_ignores_withdrawn_documents() -> None:
    def doc(i: str, family: str, version: str, status: str = "current") -> Document:
        return Document(i, i, f"{i}.pdf", i, family, version, "guideline", status)

    docs = [doc("a", "f", "2020"), doc("b", "f", "2024"), doc("c", "g", "2019")]
    assert resolve(docs) == {"a": ("superseded", "b.pdf"), "b": ("current", None), "c": ("current", None)}
    docs[1] = doc("b", "f", "2024", "withdrawn")
    assert resolve(docs) == {"a": ("current", None), "b": ("withdrawn", None), "c": ("current", None)}


# --- ingest: supersede only on strong evidence ----------------------------------------------------------
def test_same_family_unrelated_titles_both_stay_current_with_a_hint(tmp_path: Path, settings, hash_embedder) -> None:
    a = guide(tmp_path / "acme_guide_2024.pdf", "warfarin", title="Guideline on warfarin")
    b = guide(tmp_path / "acme_guide_2025.pdf", "gout", title="Guideline on gout")
    ingest([a], settings, hash_embedder)
    report = ingest([b], settings, hash_embedder)
    assert report.new_version == []
    [entry] = report.added
    assert (entry["possible_version_of"], entry["possible_family"]) == (a.name, "acme-guide")
    assert entry["hint"] == f"possible new version of {a.name}; confirm with --family acme-guide"
    docs = documents(settings)
    assert docs[a.name].status == docs[b.name].status == "current"
    assert docs[b.name].family != docs[a.name].family == "acme-guide"
    engine = Engine(settings, hash_embedder)
    assert a.name in served(engine, "warfarin anticoagulant INR bleeding")
    from cli.main import format_report

    assert "possible new version of acme_guide_2024.pdf; confirm with --family acme-guide" in format_report(report)


def test_unicode_names_of_different_guidelines_are_both_served(tmp_path: Path, settings, hash_embedder) -> None:
    a = guide(tmp_path / "WHO_指南_高血压_2024.pdf", "asthma", title="WHO hypertension guideline")
    b = guide(tmp_path / "WHO_指南_糖尿病_2025.pdf", "metformin", title="WHO diabetes guideline")
    report = ingest([a, b], settings, hash_embedder)
    assert report.new_version == [] and len(report.added) == 2
    docs = documents(settings)
    assert (docs[a.name].family, docs[b.name].family) == ("who-指南-高血压", "who-指南-糖尿病")
    assert docs[a.name].status == docs[b.name].status == "current"


def test_explicit_family_forces_the_supersede(tmp_path: Path, settings, hash_embedder) -> None:
    a = guide(tmp_path / "acme_guide_2024.pdf", "warfarin", title="Guideline on warfarin")
    b = guide(tmp_path / "acme_guide_2025.pdf", "gout", title="Guideline on gout")
    ingest([a], settings, hash_embedder)
    report = ingest([b], settings, hash_embedder, family="acme-guide")
    assert [(Path(e["file"]).name, e["supersedes"], e["reason"]) for e in report.new_version] == [
        (b.name, [a.name], "--family acme-guide given")]
    docs = documents(settings)
    assert (docs[a.name].status, docs[a.name].superseded_by) == ("superseded", b.name)


def test_confirming_a_hint_with_family_moves_the_known_file(tmp_path: Path, settings, hash_embedder) -> None:
    a = guide(tmp_path / "acme_guide_2024.pdf", "warfarin", title="Guideline on warfarin")
    b = guide(tmp_path / "acme_guide_2025.pdf", "gout", title="Guideline on gout")
    ingest([a], settings, hash_embedder)
    hinted = ingest([b], settings, hash_embedder).added[0]
    again = ingest([b], settings, hash_embedder, family=hinted["possible_family"])  # same bytes, confirmed
    [entry] = again.unchanged
    assert (entry["family"], entry["moved_from"], entry["supersedes"]) == ("acme-guide", hinted["family"], [a.name])
    assert again.generation and published_generation(settings.home) == again.generation
    docs = documents(settings)
    assert (docs[a.name].status, docs[b.name].status, docs[b.name].family) == ("superseded", "current", "acme-guide")
    assert served(Engine(settings, hash_embedder), "warfarin anticoagulant INR bleeding") <= {b.name}


def test_similar_titles_supersede_with_the_reason(tmp_path: Path, settings, hash_embedder) -> None:
    old = guide(tmp_path / "acme_warfarin_2022.pdf", "warfarin", title="Warfarin sodium tablets", extra="Old.")
    new = guide(tmp_path / "acme_warfarin_label_2025.pdf", "warfarin", title="WARFARIN SODIUM", extra="New.")
    ingest([old], settings, hash_embedder)
    report = ingest([new], settings, hash_embedder)
    [entry] = report.new_version
    assert entry["supersedes"] == [old.name]
    assert "similar titles (1.00" in entry["reason"] and old.name in entry["reason"]
    from cli.main import format_report

    line = next(ln for ln in format_report(report).splitlines() if ln.startswith("new version"))
    assert new.name in line and f"supersedes {old.name} (file names of one family" in line


# --- withdraw and reinstate -----------------------------------------------------------------------------
@pytest.fixture
def two_versions(tmp_path: Path, settings, hash_embedder) -> tuple[Path, Path]:
    old = guide(tmp_path / "acme_malaria_2022.pdf", "malaria", title="Malaria guideline", extra="Use bed nets.")
    new = guide(tmp_path / "acme_malaria_2025.pdf", "malaria", title="Malaria guideline",
                extra="Give zorblax 500 mg.")
    ingest([old], settings, hash_embedder)
    assert ingest([new], settings, hash_embedder).new_version
    return old, new


QUERY = "malaria artemisinin parasite mosquito fever"


def test_withdraw_stops_serving_at_once_and_the_older_version_is_current(two_versions, settings,
                                                                         hash_embedder) -> None:
    old, new = two_versions
    engine = Engine(settings, hash_embedder)
    assert served(engine, QUERY) == {new.name}
    before = published_generation(settings.home)
    out = withdraw(settings, new.name, "wrong zorblax dose", by="ana")
    assert (out["status"], out["now_current"], out["by"], out["reason"]) == (
        "withdrawn", [old.name], "ana", "wrong zorblax dose")
    # the same engine picks the new generation up with its next question
    assert served(engine, QUERY) == {old.name}
    assert served(engine, QUERY, include_superseded=True) == {old.name}  # withdrawn is not even history
    docs = documents(settings)
    assert (docs[new.name].status, docs[old.name].status, docs[old.name].superseded_by) == (
        "withdrawn", "current", None)
    # cheap and nothing deleted: same chunk ids and FAISS bytes, only the manifest's statuses differ
    a, b = (generations_dir(settings.home) / g for g in (before, out["generation"]))
    assert (a / "chunk_ids.json").read_text() == (b / "chunk_ids.json").read_text()
    assert (a / "index.faiss").read_bytes() == (b / "index.faiss").read_bytes()
    manifest = json.loads((b / "manifest.json").read_text())
    assert manifest["documents"][docs[new.name].doc_id] == "withdrawn"
    snap = load_snapshot(settings.home, hash_embedder.id)
    assert {snap.chunks[i].doc_id for i in range(snap.size) if snap.current_rows[i]} == {docs[old.name].doc_id}


def test_withdrawn_document_is_never_an_answer(two_versions, settings, hash_embedder) -> None:
    from rag.qa import QA

    old, new = two_versions
    qa = QA(settings, embedder=hash_embedder)
    question = "What is the malaria treatment? malaria artemisinin parasite"
    assert new.name in {h.doc.file_name for h in qa.answer(question).hits}
    withdraw(settings, new.name, "wrong zorblax dose")
    after = qa.answer(question)
    assert {h.doc.file_name for h in after.hits} == {old.name}
    assert new.name not in {c.hit.doc.file_name for c in after.citations} and "zorblax" not in after.text
    assert after.index_version == published_generation(settings.home)


def test_reinstate_reruns_the_resolution(two_versions, settings, hash_embedder) -> None:
    old, new = two_versions
    withdraw(settings, new.name, "checking the dose")
    out = reinstate(settings, documents(settings)[new.name].doc_id, by="bo")
    assert (out["status"], out["now_superseded"]) == ("current", [old.name])
    assert served(Engine(settings, hash_embedder), QUERY) == {new.name}
    # reinstating an old version does not un-serve the newer one
    withdraw(settings, old.name, "duplicate")
    assert reinstate(settings, old.name)["status"] == "superseded"
    docs = documents(settings)
    assert (docs[new.name].status, docs[old.name].status) == ("current", "superseded")


def test_ingest_after_withdraw_keeps_it_withdrawn(two_versions, tmp_path: Path, settings, hash_embedder) -> None:
    old, new = two_versions
    withdraw(settings, new.name, "wrong dose")
    ingest([guide(tmp_path / "acme_gout_2023.pdf", "gout")], settings, hash_embedder)
    docs = documents(settings)
    assert (docs[new.name].status, docs[old.name].status) == ("withdrawn", "current")


def test_withdraw_waits_for_no_ingest(two_versions, settings) -> None:
    _, new = two_versions
    with ingest_lock(settings.home), pytest.raises(GQAError, match="another ingest is running"):
        withdraw(settings, new.name, "x")
    assert documents(settings)[new.name].status == "current"


# --- command line ---------------------------------------------------------------------------------------
def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_withdraw_and_reinstate_commands(two_versions, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = two_versions
    monkeypatch.setattr("getpass.getuser", lambda: "os-user")
    code, out, _ = run(["withdraw", new.name, "--reason", "wrong zorblax dose"], capsys)
    assert code == 0 and f"withdrawn: {new.name}" in out and "by os-user" in out and f"current again: {old.name}" in out
    code, docs_out, _ = run(["docs", "--json"], capsys)
    docs = {d["file"]: d for d in json.loads(docs_out)}
    d = docs[new.name]
    assert (d["status"], d["withdrawn_by"], d["withdrawn_reason"]) == ("withdrawn", "os-user", "wrong zorblax dose")
    assert d["withdrawn_at"] and [e["action"] for e in d["history"]] == ["withdraw"]
    assert docs[old.name]["status"] == "current" and docs[old.name]["withdrawn_by"] is None
    code, table, _ = run(["docs"], capsys)
    assert code == 0 and "withdrawn" in table and "wrong zorblax dose" in table and "os-user" in table
    code, _, err = run(["withdraw", new.name, "--reason", "again"], capsys)
    assert code == 1 and "already withdrawn by os-user" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run(["reinstate", new.name, "--by", "bo", "--json"], capsys)
    assert code == 0 and (json.loads(out)["status"], json.loads(out)["by"]) == ("current", "bo")
    code, docs_out, _ = run(["docs", "--json"], capsys)
    d = {x["file"]: x for x in json.loads(docs_out)}[new.name]
    assert d["status"] == "current" and [(e["action"], e["by"]) for e in d["history"]] == [
        ("withdraw", "os-user"), ("reinstate", "bo")]


def test_withdraw_errors_are_one_line_with_exit_1(two_versions, capsys) -> None:
    _, new = two_versions
    code, _, err = run(["withdraw", "acme_malaria_2026.pdf", "--reason", "x"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "no document 'acme_malaria_2026.pdf'" in err and "close matches:" in err and new.name in err
    code, _, err = run(["withdraw", new.name], capsys)
    assert code == 1 and "--reason" in err
    code, _, err = run(["withdraw", new.name, "--reason", "  "], capsys)
    assert code == 1 and "--reason" in err
    code, _, err = run(["reinstate", new.name], capsys)
    assert code == 1 and "not withdrawn" in err


def test_withdraw_on_an_empty_home_is_an_error(capsys) -> None:
    code, _, err = run(["withdraw", "a.pdf", "--reason", "x"], capsys)
    assert code == 1 and "nothing is ingested" in err


def test_docs_json_has_withdrawal_fields_before_any_withdraw(tmp_path: Path, settings, capsys) -> None:
    ingest([guide(tmp_path / "acme_gout_2023.pdf", "gout")], settings, HashEmbedder())
    code, out, _ = run(["docs", "--json"], capsys)
    [d] = json.loads(out)
    assert code == 0 and (d["withdrawn_by"], d["withdrawn_at"], d["withdrawn_reason"], d["history"]) == (
        None, None, None, [])


# --- knowledge-team page --------------------------------------------------------------------------------
def test_knowledge_page_shows_withdrawals(two_versions, settings, hash_embedder,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from rag.qa import QA
    from ui.services import QA_KEY

    _, new = two_versions
    withdraw(settings, new.name, "wrong zorblax dose", by="ana")
    monkeypatch.setenv("GQA_ADMIN_TOKEN", "tok")
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "ui" / "app.py"), default_timeout=60)
    at.session_state[QA_KEY] = QA(settings, embedder=hash_embedder)
    at = at.run().switch_page("page_knowledge.py").run()
    at.text_input(key="admin_token").input("tok")
    at = at.run()
    assert not at.exception
    table = at.dataframe[0].value
    row = table[table["File"] == new.name].iloc[0]
    assert row["Status"] == "withdrawn" and "ana" in row["Withdrawn"] and "wrong zorblax dose" in row["Withdrawn"]
    events = at.dataframe[1].value
    assert list(events["Action"]) == ["withdraw"] and list(events["By"]) == ["ana"]
    assert "1 withdrawn" in at.caption[0].value

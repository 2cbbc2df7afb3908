"""One question, one generation: answers given while new versions are published read one View each."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from docgen import guide
from fakes import HashEmbedder

from ingest.pipeline import ingest
from rag import engine as engine_mod
from rag.errors import IndexError_
from rag.index import generations_dir
from rag.qa import QA

QUESTION = "What warfarin dose is given and when is the INR reviewed?"


def _generation(home: Path, gen_id: str) -> tuple[set[str], dict[str, str]]:
    """(chunk ids, doc_id -> status) of a published generation, read from its folder."""
    folder = generations_dir(home) / gen_id
    return set(json.loads((folder / "chunk_ids.json").read_text())), json.loads(
        (folder / "manifest.json").read_text())["documents"]


@pytest.fixture
def library(tmp_path: Path, settings):
    """A home with three guidelines published, and the embedder that built it."""
    emb = HashEmbedder()
    docs = tmp_path / "docs"
    docs.mkdir()
    for topic in ("warfarin", "gout", "asthma"):
        guide(docs / f"{topic}_guide_2000.pdf", topic)
    report = ingest([docs], settings, emb)
    assert not report.failed and report.generation
    return settings, emb, tmp_path


def test_answers_during_publishes_each_come_from_one_generation(library) -> None:
    settings, emb, tmp = library
    generations = {}  # gen_id -> (chunk ids, statuses), recorded as soon as each is published
    first = ingest([], settings, emb)  # nothing new: just read the published id
    assert first.generation is None
    qa = QA(settings, embedder=emb)
    gen0 = qa.index_version
    generations[gen0] = _generation(settings.home, gen0)
    done = threading.Event()
    errors: list[BaseException] = []
    answers = []

    def publish() -> None:
        try:
            for i in range(1, 9):
                path = guide(tmp / f"warfarin_guide_{2000 + i}.pdf", "warfarin",
                             extra=f"Edition {i} reviews the INR on day {i + 2} and adds {i} new checks.")
                rep = ingest([path], settings, emb)
                assert rep.generation, rep.to_json()
                generations[rep.generation] = _generation(settings.home, rep.generation)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    def ask() -> None:
        try:
            while not done.is_set():
                answers.append(qa.answer(QUESTION))
                qa.retrieve(QUESTION)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=publish)] + [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(answers) > 10
    seen = {a.index_version for a in answers}
    assert len(seen) >= 2, "questions were answered from more than one generation while publishing"
    for a in answers:
        chunk_ids, statuses = generations[a.index_version]
        for h in a.hits:  # every passage is a row of the generation the answer names, current in it
            assert h.chunk.chunk_id in chunk_ids
            assert statuses[h.doc.doc_id] == "current" == h.doc.status
    assert qa.answer(QUESTION).index_version == list(generations)[-1], "the next question sees the newest"


def test_loading_a_new_generation_does_not_block_questions(library, monkeypatch) -> None:
    settings, emb, tmp = library
    qa = QA(settings, embedder=emb)
    old = qa.engine.view()
    new_gen = ingest([guide(tmp / "warfarin_guide_2001.pdf", "warfarin", extra="Edition 1.")], settings,
                     emb).generation
    release, loading = threading.Event(), threading.Event()
    real_load = engine_mod.load_snapshot

    def slow_load(*args, **kwargs):
        loading.set()
        assert release.wait(30)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(engine_mod, "load_snapshot", slow_load)
    loader_result = []
    loader = threading.Thread(target=lambda: loader_result.append(qa.answer(QUESTION)))
    loader.start()
    assert loading.wait(30)
    t = time.perf_counter()
    meanwhile = qa.answer(QUESTION)  # must not wait for the load in the other thread
    assert time.perf_counter() - t < 10
    assert meanwhile.index_version == old.gen_id
    release.set()
    loader.join(30)
    assert loader_result[0].index_version == new_gen
    assert qa.answer(QUESTION).index_version == new_gen


def test_a_generation_collected_during_its_load_is_followed_to_the_newest(library, monkeypatch) -> None:
    settings, emb, tmp = library
    qa = QA(settings, embedder=emb)
    qa.engine.view()
    ingest([guide(tmp / "warfarin_guide_2001.pdf", "warfarin", extra="Edition 1.")], settings, emb)
    real_load = engine_mod.load_snapshot
    newest = []

    def load_while_publishing(home, embedder_id, gen_id=None):
        if not newest:  # a publish lands and collects this generation while it is being read
            newest.append(ingest([guide(tmp / "warfarin_guide_2002.pdf", "warfarin", extra="Edition 2.")],
                                 settings, emb).generation)
            raise IndexError_(f"published index {gen_id} is unreadable")
        return real_load(home, embedder_id, gen_id)

    monkeypatch.setattr(engine_mod, "load_snapshot", load_while_publishing)
    assert qa.answer(QUESTION).index_version == newest[0]


def test_an_unloadable_new_generation_keeps_the_previous_one(library, monkeypatch) -> None:
    settings, emb, tmp = library
    qa = QA(settings, embedder=emb)
    old = qa.engine.view().gen_id
    new_gen = ingest([guide(tmp / "warfarin_guide_2001.pdf", "warfarin", extra="Edition 1.")], settings,
                     emb).generation
    (generations_dir(settings.home) / new_gen / "chunk_ids.json").write_text("not json")
    assert qa.answer(QUESTION).index_version == old  # answered, from the generation it holds

"""Stops at a named stage of an ingest or a reindex, for the kill tests' child processes.

A child calls `install(stage, marker)` before it runs the pipeline: when the pipeline reaches `stage`
(chunk, embed, write_index, commit or gc; a child adds its own, such as extract, with `pause`) the
stage's name is written to `marker` and the process sleeps until the test kills it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import faiss
from fakes import HashEmbedder

from ingest import pipeline
from rag.store import Store


def install(stage: str, marker: Path) -> tuple[Callable[[str], None], type[HashEmbedder]]:
    """Patch the pipeline to stop at `stage`; returns `pause` and the embedder class to use (it stops at
    'embed', after any vectors of earlier batches are cached, and sleeps GQA_TEST_EMBED_DELAY a call)."""

    def pause(at: str) -> None:
        if stage == at:
            marker.write_text(at)
            time.sleep(600)

    class Embedder(HashEmbedder):
        def embed(self, texts):
            pause("embed")
            time.sleep(float(os.environ.get("GQA_TEST_EMBED_DELAY", "0")))
            return super().embed(texts)

    chunk_pages = pipeline.chunk_pages

    def chunk(*a, **k):
        pause("chunk")
        return chunk_pages(*a, **k)

    write_index = faiss.write_index

    def write(index, path):
        write_index(index, path)
        pause("write_index")  # the new generation is half written in its temporary folder

    publish = Store.publish
    published: list[bool] = []

    def publishing(self, *a, **k):
        self._publishing = True
        out = publish(self, *a, **k)
        published.append(True)
        return out

    transaction = Store.transaction

    @contextmanager
    def tx(self):
        with transaction(self) as c:
            yield c
            if getattr(self, "_publishing", False):
                pause("commit")  # every row of the publish is written, COMMIT has not run

    collect_garbage = pipeline.collect_garbage

    def gc(*a, **k):
        if published:  # not the collection every ingest starts with
            pause("gc")  # committed: the new generation is published, old folders not yet collected
        return collect_garbage(*a, **k)

    pipeline.chunk_pages, faiss.write_index, pipeline.collect_garbage = chunk, write, gc
    Store.publish, Store.transaction = publishing, tx  # type: ignore[method-assign]
    return pause, Embedder

"""rag.integrations.llama_index with llama-index-core's own classes: nodes, MetadataFilters, Response; fast tier
(generated PDFs with a superseded version and a formulary, hash embedder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from answer_corpus import QUESTION, guide, write_corpus
from llama_index.core import Settings as LlamaSettings
from llama_index.core.base.response.schema import Response
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

from rag.integrations.llama_index import GuidelineQueryEngine, GuidelineRetriever
from rag.qa import QA

METADATA = {"doc", "title", "version", "page", "page_label", "section", "status", "chunk_id"}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The answering corpus, an older warfarin guideline (superseded by the 2024 one) and a formulary."""
    from fakes import HashEmbedder

    from ingest.pipeline import ingest
    from rag.config import Settings

    pdfs = write_corpus(tmp_path_factory.mktemp("pdfs"))
    guide(pdfs / "warfarin_2020.pdf", "warfarin", "warfarin older edition anticoagulant INR dose")
    guide(pdfs / "hospital_formulary_2024.pdf", "warfarin", "formulary warfarin tablets dose")
    home = tmp_path_factory.mktemp("li-home")
    report = ingest([pdfs], Settings.from_env(home=home), HashEmbedder())
    assert not report.failed, report.failed
    return home


@pytest.fixture
def qa(library: Path, hash_embedder) -> QA:
    from rag.config import Settings

    return QA(Settings.from_env(home=library), embedder=hash_embedder)


def where(*filters: MetadataFilter, condition: FilterCondition = FilterCondition.AND) -> MetadataFilters:
    return MetadataFilters(filters=list(filters), condition=condition)


def test_nodes_are_the_passages_ask_answers_from(qa):
    nodes = GuidelineRetriever(qa=qa, similarity_top_k=4).retrieve(QUESTION)
    hits = qa.retrieve(QUESTION, k=4)
    assert len(nodes) == 4 and all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    assert [n.node.node_id for n in nodes] == [h.chunk.chunk_id for h in hits]
    assert [n.node.get_content() for n in nodes] == [h.chunk.text for h in hits]
    assert [n.score for n in nodes] == pytest.approx([h.score for h in hits])
    for n, h in zip(nodes, hits, strict=True):
        meta = n.node.metadata
        assert METADATA <= set(meta)
        assert (meta["doc"], meta["version"], meta["page"], meta["status"], meta["chunk_id"]) == \
            (h.doc.file_name, h.doc.version, h.chunk.page, h.doc.status, h.chunk.chunk_id)
    # what an LLM reads of a node names its source, not the hash
    shown = nodes[0].node.get_content(metadata_mode="llm")
    assert nodes[0].node.metadata["title"] in shown and nodes[0].node.node_id not in shown


def test_built_from_the_environment_like_the_cli(library, monkeypatch):
    from fakes import HashEmbedder

    monkeypatch.setenv("GQA_HOME", str(library))
    monkeypatch.setenv("GQA_TOP_K", "3")
    monkeypatch.setattr("rag.embedder.SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder())
    nodes = GuidelineRetriever().retrieve(QueryBundle(QUESTION))
    assert len(nodes) == 3 and nodes[0].node.metadata["doc"].endswith(".pdf")
    assert LlamaSettings._llm is None and LlamaSettings._embed_model is None, "llama-index's globals stay unset"


def metadata_of(qa, filters, key: str, k: int = 10) -> set:
    return {n.node.metadata[key] for n in GuidelineRetriever(qa=qa, similarity_top_k=k, filters=filters)
            .retrieve(QUESTION)}


def test_filters_on_family_type_and_status(qa):
    assert metadata_of(qa, None, "status") == {"current"}, "superseded versions only when asked for"
    assert metadata_of(qa, where(MetadataFilter(key="family", value="metformin")), "family") == {"metformin"}
    assert metadata_of(qa, where(MetadataFilter(key="doc_type", value="formulary")), "doc") == \
        {"hospital_formulary_2024.pdf"}
    assert metadata_of(qa, where(MetadataFilter(key="status", value="superseded")), "doc") == {"warfarin_2020.pdf"}
    both = where(MetadataFilter(key="status", value=["current", "superseded"], operator=FilterOperator.IN))
    assert metadata_of(qa, both, "status", k=30) == {"current", "superseded"}
    either = where(MetadataFilter(key="family", value="metformin"), MetadataFilter(key="family", value="warfarin"),
                   condition=FilterCondition.OR)
    assert metadata_of(qa, either, "family", k=30) == {"metformin", "warfarin"}
    anded = where(MetadataFilter(key="family", value="warfarin"),
                  MetadataFilter(key="status", value=["current", "superseded"], operator=FilterOperator.IN))
    assert metadata_of(qa, anded, "doc", k=30) == {"warfarin_2020.pdf", "warfarin_2024.pdf"}
    never = where(MetadataFilter(key="family", value="metformin"), MetadataFilter(key="family", value="warfarin"))
    assert GuidelineRetriever(qa=qa, filters=never).retrieve(QUESTION) == []


@pytest.mark.parametrize(("filters", "needle"), [
    (where(MetadataFilter(key="title", value="x")), "metadata filter key 'title' is not supported"),
    (where(MetadataFilter(key="family", value="x", operator=FilterOperator.NE)), "operator '!=' on 'family'"),
    (where(MetadataFilter(key="status", value="withdrawn")), "status ['withdrawn'] cannot be filtered on"),
    (where(MetadataFilter(key="family", value="a"), MetadataFilter(key="doc_type", value="label"),
           condition=FilterCondition.OR), "'or' across different keys (doc_type, family)"),
    (where(where(MetadataFilter(key="family", value="a"))), "nested MetadataFilters"),
])
def test_an_unsupported_filter_is_a_value_error_naming_it(qa, filters, needle):
    with pytest.raises(ValueError) as err:
        GuidelineRetriever(qa=qa, filters=filters)
    assert needle in str(err.value)


def test_query_engine_sources_are_the_answers_citations(qa):
    response = GuidelineQueryEngine(qa=qa).query(QUESTION)
    answer = qa.answer(QUESTION)
    assert isinstance(response, Response) and not answer.abstained
    assert str(response) == answer.text and "[1]" in response.response
    assert [n.node.node_id for n in response.source_nodes] == [c.hit.chunk.chunk_id for c in answer.citations]
    assert [(n.node.metadata["n"], n.node.metadata["quote"]) for n in response.source_nodes] == \
        [(c.n, c.quote) for c in answer.citations]
    assert response.metadata == {"abstained": False, "index_version": answer.index_version,
                                 "generator": "extractive", "lead": answer.lead}


def test_query_engine_abstains_with_no_sources(qa):
    engine = GuidelineQueryEngine(qa=qa, filters=where(MetadataFilter(key="family", value="no-such-family")))
    response = engine.query(QueryBundle(QUESTION))
    assert response.source_nodes == [] and response.metadata["abstained"] is True
    assert response.response == qa.answer(QUESTION, filters=engine.filters).text

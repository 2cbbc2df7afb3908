"""The product as llama-index components: a retriever of cited passages and a query engine of cited answers.

`GuidelineRetriever().retrieve(question)` returns the passages `ask` answers from (hybrid retrieval,
re-ranked) as NodeWithScore(TextNode) with the document, version, page, section and status in the
metadata; `GuidelineQueryEngine().query(question)` returns the product's own answer (quoted and
verified, or an abstention) as a Response whose source_nodes are its citations. Both read GQA_* like
the CLI, or take a `QA`. Nothing here touches llama-index's global `Settings` (its LLM and embedding
defaults would fetch tokenizer files on first use): every object is passed explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

from rag.config import Settings
from rag.qa import QA
from rag.retrieve import Filters
from rag.types import Answer, Document, Hit

# The metadata keys a MetadataFilter may name, and the values `status` may take (a withdrawn document
# is never served, so it cannot be asked for).
FILTER_KEYS = ("family", "doc_type", "status")
STATUSES = ("current", "superseded")


@dataclass(frozen=True)
class SupersededOnly(Filters):
    """Filters admitting superseded versions alone (rag.retrieve.Filters always admits current ones)."""

    def admits(self, d: Document) -> bool:
        """Superseded, and of an admitted family and type."""
        return d.status == "superseded" and super().admits(d)


@dataclass(frozen=True)
class NoDocuments(Filters):
    """What filters that contradict each other admit (family == a AND family == b): nothing."""

    def admits(self, d: Document) -> bool:
        """Never."""
        return False


def to_filters(filters: MetadataFilters | Filters | None) -> Filters | None:
    """llama-index MetadataFilters on family, doc_type and status as the product's Filters.

    EQ and IN on those keys, joined by AND (or by OR among filters on one key); anything else is a
    ValueError naming it. No status filter: current versions only, as everywhere in the product.

    Example: MetadataFilters(filters=[MetadataFilter(key="family", value="warfarin")]) ->
    Filters(families=('warfarin',), doc_types=(), include_superseded=False)
    """
    if filters is None or isinstance(filters, Filters):
        return filters
    either = filters.condition == FilterCondition.OR
    if filters.condition not in (FilterCondition.AND, FilterCondition.OR, None):
        raise ValueError(f"filter condition {filters.condition.value!r} is not supported; use 'and' or 'or'")
    wanted: dict[str, set[str]] = {}
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            raise ValueError("nested MetadataFilters are not supported; give one flat list of filters on "
                             f"{', '.join(FILTER_KEYS)}")
        key, values = _values(f)
        if either or key not in wanted:
            wanted[key] = wanted.get(key, set()) | values
        else:
            wanted[key] &= values
    if either and len(wanted) > 1:
        raise ValueError(f"'or' across different keys ({', '.join(sorted(wanted))}) is not supported; "
                         "'or' may only join filters on one key")
    if not all(wanted.values()):
        return NoDocuments()
    families, types = tuple(sorted(wanted.get("family", ()))), tuple(sorted(wanted.get("doc_type", ())))
    statuses = wanted.get("status", {"current"})
    if statuses == {"superseded"}:
        return SupersededOnly(families, types, include_superseded=True)
    return Filters(families, types, include_superseded="superseded" in statuses)


def _values(f: MetadataFilter) -> tuple[str, set[str]]:
    """The key and the set of values one filter admits."""
    if f.key not in FILTER_KEYS:
        raise ValueError(f"metadata filter key {f.key!r} is not supported; filter on one of {', '.join(FILTER_KEYS)}")
    if f.operator == FilterOperator.EQ:
        given: list = [f.value]
    elif f.operator == FilterOperator.IN and isinstance(f.value, list):
        given = list(f.value)
    else:
        raise ValueError(f"metadata filter operator {f.operator.value!r} on {f.key!r} is not supported; "
                         "use '==' or 'in' (with a list)")
    values = {str(v) for v in given}
    if f.key == "status" and not values <= set(STATUSES):
        raise ValueError(f"status {sorted(values - set(STATUSES))} cannot be filtered on; status is one of "
                         f"{', '.join(STATUSES)} (withdrawn documents are never served)")
    return f.key, values


def node(hit: Hit, **extra: object) -> NodeWithScore:
    """One hit as a NodeWithScore: the passage text, where it stands in metadata, the chunk id as node id."""
    c, d = hit.chunk, hit.doc
    metadata = {"doc": d.file_name, "title": d.title, "version": d.version, "page": c.page,
                "page_label": c.page_label, "section": c.section, "status": d.status, "chunk_id": c.chunk_id,
                "family": d.family, "doc_type": d.doc_type, **extra}
    # an LLM reading the node gets the passage with its source, not the hash that names it
    text = TextNode(id_=c.chunk_id, text=c.text, metadata=metadata, excluded_llm_metadata_keys=["chunk_id"],
                    excluded_embed_metadata_keys=["chunk_id"])
    return NodeWithScore(node=text, score=float(hit.score))


def source_nodes(answer: Answer) -> list[NodeWithScore]:
    """An answer's citations as nodes, in their [n] order, with `n` and the verbatim `quote` in metadata."""
    return [node(c.hit, n=c.n, quote=c.quote) for c in answer.citations]


class GuidelineRetriever(BaseRetriever):
    """The passages `ask` answers from, best first: `GuidelineRetriever(similarity_top_k=5).retrieve(q)`."""

    def __init__(self, qa: QA | None = None, similarity_top_k: int | None = None,
                 filters: MetadataFilters | Filters | None = None,
                 callback_manager: CallbackManager | None = None) -> None:
        """`qa`: default one QA over GQA_* (as the CLI); `similarity_top_k`: default GQA_TOP_K; `filters`:
        MetadataFilters on family, doc_type and status (a ValueError names any other), or Filters."""
        if similarity_top_k is not None and similarity_top_k < 1:
            raise ValueError(f"similarity_top_k={similarity_top_k}: must be at least 1")
        self.qa = qa or QA(Settings.from_env())
        self.similarity_top_k = similarity_top_k
        self.filters = to_filters(filters)  # checked now: a bad filter fails at construction
        super().__init__(callback_manager=callback_manager)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.qa.retrieve(query_bundle.query_str, k=self.similarity_top_k, filters=self.filters)
        return [node(h) for h in hits]


class GuidelineQueryEngine(BaseQueryEngine):
    """The product's cited answer: `str(GuidelineQueryEngine().query(q))` is the answer with its [n]
    markers; `.source_nodes` are the citations; `.metadata` says whether it abstained and from which index."""

    def __init__(self, qa: QA | None = None, filters: MetadataFilters | Filters | None = None,
                 generator: str | None = None, similarity_top_k: int | None = None,
                 callback_manager: CallbackManager | None = None) -> None:
        """`generator`: extractive (default GQA_GENERATOR), openai or llamacpp; the rest as GuidelineRetriever."""
        self.qa = qa or QA(Settings.from_env())
        self.filters = to_filters(filters)
        self.generator = generator
        self.similarity_top_k = similarity_top_k
        super().__init__(callback_manager=callback_manager)

    def _query(self, query_bundle: QueryBundle) -> Response:
        answer = self.qa.answer(query_bundle.query_str, filters=self.filters, generator=self.generator,
                                k=self.similarity_top_k)
        return Response(response=answer.text, source_nodes=source_nodes(answer),
                        metadata={"abstained": answer.abstained, "index_version": answer.index_version,
                                  "generator": answer.generator, "lead": answer.lead})

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        # answering is CPU-bound and QA is thread-safe: no separate async path
        return self._query(query_bundle)

    def _get_prompt_modules(self) -> dict:
        return {}

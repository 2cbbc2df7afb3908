"""Seeded synthetic corpora for bench/query.py: clustered unit vectors and topical generated text.

Real sentence embeddings are not uniform on the sphere: they share a common direction (random pairs of
chunks of the real corpus have cosine ~0.34), fall into topics within topics, and a passage lies close
to a few others (nearest neighbour ~0.89). A flat Gaussian mixture with a few thousand centres is too
easy for IVF at a million points (every neighbour sits in the query's own cluster, recall 1.0 at any
nprobe), so the vectors here come from a tree: 8 topics, each split 8 ways, down to leaves of ~16
chunks (at 1M: 8 / 64 / 512 / 4,096 / 32,768 nodes and 62,500 leaves), every level adding its own
random direction, plus noise. The weights are calibrated so that, at the real corpus's size, pair
cosines and the IVF recall-against-nprobe curve are no easier than the real corpus's (bench/RESULTS.md).
The text of a chunk is a Zipf background stream mixed with topic words of its 4,096-level node, so
BM25 postings have a realistic shape (a few very common terms, a long tail).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.snapshot import Snapshot
from rag.types import Chunk, Document

DIM = 384  # all-MiniLM-L6-v2
BRANCH, LEAF_SIZE, MAX_LEVELS = 8, 16, 5  # tree shape (levels above the leaves)
# Squared weights (shares of a vector's energy): the common direction, each tree level, point noise;
# the leaf level takes what is left. A question sits farther from its passages than chunks from each other.
SHARED_W2, LEVEL_W2, NOISE_W2, QUERY_NOISE_W2 = 0.30, 0.07, 0.30, 0.50
# Real embeddings are anisotropic: the covariance of the real corpus's chunk vectors decays as a power
# law (exponent ~1.2, participation ratio ~25 of 384 dimensions); every random direction here does too.
SPECTRUM_EXPONENT = 1.2
WORD_LEVEL = 3  # topic words belong to the node on this level (4,096 of them at 1M)
TOPIC_WORDS = 40  # words characteristic of one node
P_TOPIC = 0.3  # share of a chunk's tokens drawn from its node's topic words
MEAN_TOKENS = 80  # BM25 tokens per chunk after stop words (set from the real corpus, see RESULTS.md)
VOCAB = 100_000
CHUNKS_PER_DOC = 1000


@dataclass
class Corpus:
    """n chunks: leaf and topic node per row, token streams, and the tree their vectors were drawn from."""

    n: int
    leaf: np.ndarray  # (n,) int32 leaf node per row
    topic: np.ndarray  # (n,) int32 node whose topic words the row uses
    tokens: np.ndarray  # (T,) int32 word ids of all chunks, concatenated
    offsets: np.ndarray  # (n + 1,) int64 start of each chunk in `tokens`
    vocab: np.ndarray  # (VOCAB,) str; every word is its own Snowball stem and no stop word
    topic_words: np.ndarray  # (topic nodes, TOPIC_WORDS) int32 word ids
    zipf_cdf: np.ndarray
    tree: _Tree

    def text(self, row: int) -> str:
        """The generated passage of one row."""
        return " ".join(self.vocab[self.tokens[self.offsets[row]:self.offsets[row + 1]]])


@dataclass
class _Tree:
    leaf_centres: np.ndarray  # (leaves, DIM): common direction plus the directions of every ancestor
    leaf_topic: np.ndarray  # (leaves,) topic node of each leaf

    def sample(self, leaf: np.ndarray, rng: np.random.Generator, noise_w2: float = NOISE_W2) -> np.ndarray:
        """Unit vectors around the given leaves."""
        z = rng.standard_normal((len(leaf), DIM), dtype=np.float32) * np.sqrt(noise_w2 * _spectrum())
        x = self.leaf_centres[leaf] + z
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _spectrum() -> np.ndarray:
    """Per-dimension variance shares, decaying as a power law and summing to 1."""
    v = np.arange(1, DIM + 1, dtype=np.float64) ** -SPECTRUM_EXPONENT
    return (v / v.sum()).astype(np.float32)


def _directions(rng: np.random.Generator, m: int) -> np.ndarray:
    """m random unit directions drawn from the anisotropic spectrum."""
    return _unit(rng.standard_normal((m, DIM)) * np.sqrt(_spectrum()))


def make_tree(n: int, rng: np.random.Generator) -> _Tree:
    """Levels of BRANCH**l nodes (l = 1..MAX_LEVELS, while below the leaf count), then n // LEAF_SIZE leaves."""
    leaves = max(BRANCH, n // LEAF_SIZE)
    sizes = [BRANCH**lv for lv in range(1, MAX_LEVELS + 1) if BRANCH**lv < leaves] + [leaves]
    leaf_w2 = 1.0 - SHARED_W2 - NOISE_W2 - LEVEL_W2 * (len(sizes) - 1)
    acc = np.sqrt(SHARED_W2) * _unit(rng.standard_normal(DIM))[None, :]
    topic = np.zeros(1, dtype=np.int32)
    for lv, size in enumerate(sizes):
        parent = rng.integers(0, len(acc), size)
        w = np.sqrt(leaf_w2 if lv == len(sizes) - 1 else LEVEL_W2)
        acc = acc[parent] + np.float32(w) * _directions(rng, size)
        topic = np.arange(size, dtype=np.int32) if lv <= WORD_LEVEL else topic[parent]
    return _Tree(acc.astype(np.float32), topic)


def make_vocab(size: int = VOCAB) -> np.ndarray:
    """Pronounceable pseudo-words that survive bm25s's tokenizer unchanged (own stem, not a stop word).

    Example: make_vocab(3) -> array(['baba', 'babi', 'babo'], ...)
    """
    import Stemmer
    from bm25s.stopwords import STOPWORDS_EN

    syllables = np.array([c + v for c in "bdfgklmnprtvz" for v in "aiou"])
    words: list[str] = []
    n_syl = 2
    stem = Stemmer.Stemmer("english").stemWords
    while len(words) < size:
        grid = np.stack(np.meshgrid(*[syllables] * n_syl, indexing="ij"), -1).reshape(-1, n_syl)
        cand = ["".join(row) for row in grid]
        words += [w for w, s in zip(cand, stem(cand), strict=True) if w == s and w not in STOPWORDS_EN]
        n_syl += 1
    return np.array(words[:size])


def make_corpus(n: int, sink: Callable[[np.ndarray], None] | None = None, seed: int = 0,
                block: int = 100_000) -> Corpus:
    """Generate n chunks; their vectors are handed to `sink` (e.g. `index.add`) block by block to bound memory."""
    rng = np.random.default_rng(seed)
    tree = make_tree(n, rng)
    # Uneven leaf sizes, like real topics: weights from a log-normal.
    weights = rng.lognormal(0.0, 0.7, len(tree.leaf_centres))
    leaf = rng.choice(len(weights), size=n, p=weights / weights.sum()).astype(np.int32)
    if sink is not None:
        for s in range(0, n, block):
            sink(tree.sample(leaf[s:s + block], rng))
    vocab = make_vocab()
    ranks = np.arange(1, VOCAB + 1, dtype=np.float64)
    zipf_cdf = np.cumsum(1.0 / ranks**1.05)
    zipf_cdf /= zipf_cdf[-1]
    # Topic words come from the mid-frequency band, like 'warfarin' or 'schistosomiasis'.
    topic = tree.leaf_topic[leaf]
    topic_words = rng.integers(500, VOCAB, (int(tree.leaf_topic.max()) + 1, TOPIC_WORDS)).astype(np.int32)
    lengths = np.clip(rng.normal(MEAN_TOKENS, MEAN_TOKENS / 3, n), 8, 3 * MEAN_TOKENS).astype(np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.empty(offsets[-1], dtype=np.int32)
    for s in range(0, n, block):
        e = min(n, s + block)
        row_topic = np.repeat(topic[s:e], lengths[s:e])
        background = np.searchsorted(zipf_cdf, rng.random(len(row_topic))).astype(np.int32)
        topical = topic_words[row_topic, rng.integers(0, TOPIC_WORDS, len(row_topic))]
        tokens[offsets[s]:offsets[e]] = np.where(rng.random(len(row_topic)) < P_TOPIC, topical, background)
    return Corpus(n, leaf, topic, tokens, offsets, vocab, topic_words, zipf_cdf, tree)


def make_queries(corpus: Corpus, m: int, seed: int = 1) -> tuple[list[str], np.ndarray]:
    """m questions: 3 topic words of a row's node plus 3 background words, and a vector near that row's leaf."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, corpus.n, m)
    vecs = corpus.tree.sample(corpus.leaf[rows], rng, NOISE_W2 + QUERY_NOISE_W2)
    skip = corpus.zipf_cdf[9]  # leave out the ten most common words: a question rarely consists of them
    texts = []
    for t in corpus.topic[rows]:
        topical = corpus.topic_words[t, rng.choice(TOPIC_WORDS, 3, replace=False)]
        background = np.searchsorted(corpus.zipf_cdf, skip + rng.random(3) * (1 - skip))
        texts.append(" ".join(corpus.vocab[np.concatenate([topical, background])]))
    return texts, vecs


class LazyChunks(Sequence):
    """The chunks of a synthetic corpus, built on access (the product only touches the hits).

    The product reads its chunks from the store by row (rag.snapshot.StoredChunks); building one here
    costs ~0.04 ms (joining its words), and
    `to_hits` reads each hit's row twice, so recent rows are kept to keep that cost out of the timings.
    """

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self._recent: OrderedDict[int, Chunk] = OrderedDict()

    def __len__(self) -> int:
        return self.corpus.n

    def __getitem__(self, row):  # type: ignore[override]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        row = int(row) + (self.corpus.n if int(row) < 0 else 0)
        if not 0 <= row < self.corpus.n:
            raise IndexError(f"row {row} outside 0..{self.corpus.n - 1}")
        chunk = self._recent.get(row)
        if chunk is None:
            chunk = Chunk(chunk_id=f"syn{row}", doc_id=f"doc{row // CHUNKS_PER_DOC}", ordinal=row % CHUNKS_PER_DOC,
                          page=1, page_end=1, page_label="1", section="", text=self.corpus.text(row))
            self._recent[row] = chunk
            if len(self._recent) > 256:
                self._recent.popitem(last=False)
        return chunk


def make_snapshot(corpus: Corpus, index) -> Snapshot:
    """A product Snapshot over the corpus (empty titles and sections: the text is the whole token stream)."""
    n_docs = (corpus.n + CHUNKS_PER_DOC - 1) // CHUNKS_PER_DOC
    docs = {f"doc{j}": Document(doc_id=f"doc{j}", sha256="", file_name=f"doc{j}.pdf", title="", family=f"f{j}",
                                version="1", doc_type="guideline") for j in range(n_docs)}
    return Snapshot(f"synthetic-{corpus.n}", index, LazyChunks(corpus), docs, np.ones(corpus.n, dtype=bool),
                    (np.arange(corpus.n) // CHUNKS_PER_DOC).astype(np.int32), tuple(docs))


def bm25_scores(corpus: Corpus, k1: float = 1.5, b: float = 0.75) -> dict:
    """bm25s's eager score matrix (method 'lucene', its default) built with vectorised numpy.

    bm25s.BM25.index loops over documents in Python and holds every token as a Python int, which at
    a million chunks costs minutes and several GB; this yields the same CSC arrays (checked against
    bm25s on 100,000 chunks by bench/query.py) so that the query path can be measured at 1M.
    """
    n = corpus.n
    doc = np.repeat(np.arange(n, dtype=np.int64), np.diff(corpus.offsets))
    pair, tf = np.unique(doc * VOCAB + corpus.tokens, return_counts=True)
    del doc
    pair_doc = (pair // VOCAB).astype(np.int32)
    pair_word = (pair % VOCAB).astype(np.int32)
    del pair
    df = np.bincount(pair_word, minlength=VOCAB)
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
    doc_len = np.diff(corpus.offsets).astype(np.float32)
    norm = k1 * ((1 - b) + b * doc_len / doc_len.mean())
    data = idf[pair_word] * (tf / (norm[pair_doc] + tf)).astype(np.float32)
    order = np.argsort(pair_word, kind="stable")  # column-major; rows stay sorted within a column
    indptr = np.zeros(VOCAB + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    return {"data": data[order].astype(np.float32), "indices": pair_doc[order], "indptr": indptr, "num_docs": n}

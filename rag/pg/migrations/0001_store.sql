-- The whole store of guideline-qa in PostgreSQL: the tables of the embedded store (rag/store.py and
-- the generation folders of rag/index.py) in one database shared by every app replica.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE documents (
    doc_id text PRIMARY KEY, sha256 text NOT NULL UNIQUE, file_name text NOT NULL, title text NOT NULL,
    family text NOT NULL, version text NOT NULL, doc_type text NOT NULL, status text NOT NULL,
    pages integer NOT NULL, chunks integer NOT NULL, ingested_at text NOT NULL, superseded_by text,
    source_path text NOT NULL DEFAULT '', cut integer NOT NULL DEFAULT 0,
    chunker integer NOT NULL DEFAULT 0
);
CREATE INDEX documents_family ON documents(family);

CREATE TABLE pages (
    doc_id text NOT NULL, cut integer NOT NULL, number integer NOT NULL, label text NOT NULL,
    text text NOT NULL, ocr boolean NOT NULL DEFAULT false, dropped text NOT NULL DEFAULT '',
    PRIMARY KEY (doc_id, cut, number)
);

-- Chunks are immutable rows carrying their vector (halfvec: half the bytes of float32, recall the
-- same at this dimension) and their full-text vector (title, section and text, as BM25 reads a row)
-- with its length in words (BM25's length normalisation: rag/pg/reader.py).
-- doc_cut ('<doc_id>/<cut>') is what a generation's documents are filtered by. The HNSW index is one
-- per vector dimension (a partial expression index, made by the first publish of that dimension:
-- rag/pg/store.py), since a column without a fixed dimension cannot be indexed.
CREATE TABLE chunks (
    chunk_id text PRIMARY KEY, doc_id text NOT NULL, cut integer NOT NULL, ordinal integer NOT NULL,
    page integer NOT NULL, page_end integer NOT NULL, page_label text NOT NULL, section text NOT NULL,
    kind text NOT NULL, text text NOT NULL, content_hash text NOT NULL,
    starts_mid boolean NOT NULL DEFAULT false, ends_mid boolean NOT NULL DEFAULT false,
    cut_instruction boolean NOT NULL DEFAULT false, ocr boolean NOT NULL DEFAULT false,
    fields text NOT NULL DEFAULT '',
    doc_cut text NOT NULL, dim integer NOT NULL, embedding halfvec NOT NULL, tsv tsvector NOT NULL,
    tsv_length integer NOT NULL DEFAULT 0
);
CREATE INDEX chunks_doc ON chunks(doc_id, cut, ordinal);
CREATE INDEX chunks_doc_cut ON chunks(doc_cut);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);

-- the embedding cache: float32 bytes, exactly as the embedded store keeps them (the answerer's vectors)
CREATE TABLE embeddings (
    content_hash text NOT NULL, embedder_id text NOT NULL, vector bytea NOT NULL,
    PRIMARY KEY (content_hash, embedder_id)
);

-- A generation: its rows (chunk ids in a fixed order: row i of a reader's snapshot), the document of
-- each row, each document's status and cut, the answerer's term statistics and abbreviations, and the
-- mean length of its rows' full-text vectors (BM25's avg_len).
CREATE TABLE generations (
    seq bigserial UNIQUE, gen_id text PRIMARY KEY, created_at text NOT NULL, embedder_id text NOT NULL,
    vectors integer NOT NULL, documents integer NOT NULL, dim integer NOT NULL,
    chunk_ids text[] NOT NULL, row_doc integer[] NOT NULL, doc_order text[] NOT NULL,
    manifest jsonb NOT NULL, terms text NOT NULL, abbreviations text NOT NULL,
    avg_length double precision NOT NULL DEFAULT 1
);

CREATE TABLE withdrawals (
    id bigserial PRIMARY KEY, doc_id text NOT NULL, action text NOT NULL, reason text NOT NULL,
    who text NOT NULL, at text NOT NULL, gen_id text NOT NULL
);
CREATE INDEX withdrawals_doc ON withdrawals(doc_id, id);

CREATE TABLE audit (
    id bigserial PRIMARY KEY, at text NOT NULL, channel text NOT NULL, who text,
    index_version text NOT NULL, generator text NOT NULL, abstained integer NOT NULL, citations text NOT NULL,
    question text
);
CREATE INDEX audit_at ON audit(at);

CREATE TABLE feedback (
    id bigserial PRIMARY KEY, created_at text NOT NULL, rating text NOT NULL, comment text, question text,
    answer text, abstained integer NOT NULL, citations text NOT NULL, index_version text NOT NULL,
    generator text NOT NULL, filters text NOT NULL DEFAULT '{}', purged_at text
);
CREATE INDEX feedback_created ON feedback(created_at);

CREATE TABLE eval_runs (
    seq bigserial UNIQUE, run_id text PRIMARY KEY, started_at text NOT NULL, finished_at text NOT NULL,
    dataset text NOT NULL, dataset_key text NOT NULL, items integer NOT NULL,
    index_version text NOT NULL, generator text NOT NULL, judge text NOT NULL,
    passed integer NOT NULL, metrics text NOT NULL, summary text NOT NULL, report_dir text NOT NULL
);
CREATE INDEX eval_runs_key ON eval_runs(dataset_key, judge, generator, started_at);

"""The PostgreSQL store (GQA_DATABASE_URL): schema migrations, the store, and the reader side (pgvector, full-text search)."""

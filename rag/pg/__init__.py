"""The PostgreSQL store (GQA_DATABASE_URL): migrations, the store, and its reader side (pgvector, full-text search)."""

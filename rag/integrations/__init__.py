"""Adapters that let other frameworks call the product: `rag.integrations.llama_index`."""

"""The outside world: Evolution, the chat model, embeddings, Chroma, the embedded PostgreSQL."""

"""Conversa's engine: the domain, the actors and the clients they use.

Pure modules (no Ray, no I/O): `whatsapp`, `debounce`, `chunking`, `prompt`, `naming`.
"""

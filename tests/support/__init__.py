"""Real HTTP servers that speak the Evolution and OpenAI protocols, and test helpers."""

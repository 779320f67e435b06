"""The Ray actors: thin shells, cheap to import; the flows they run live in `engine.services`."""

"""The Ray Serve application: FastAPI routes for Evolution webhooks and the operator API."""

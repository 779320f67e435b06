"""HTTP routes of the Serve app: Evolution webhooks and the operator API."""

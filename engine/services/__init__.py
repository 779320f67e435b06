"""The flows the actors and the ingress run: webhook → rows, a turn's reply, recovery, ingestion."""

"""Bulk loading: NDJSON and Bundle files into the store through the one write path, in batches."""

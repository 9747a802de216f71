"""Ingestion, plain Python: the landing-zone contract and loader (`landing`), the
bring-your-own-data importer (`importer`) and the Great Expectations helpers (`quality`)."""

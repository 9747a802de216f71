"""The storefront's personalization API: a read-only cache built from the published copy.

`cache.py` builds one SQLite file from `published/marts.duckdb` (every customer's
recommendations, segments and content choices, every product's similar products), replaced
atomically; `content.py` reads the content rules (`segments/content.yml`); `server.py` is the
HTTP API (FastAPI on uvicorn) that answers from the cache and opens a new one when it appears;
`cli.py` is `python -m personalization build | serve`.
"""

"""Landing-zone ingestion as library code: the datasets' contract (``datasets``), the landing zone
(``landing_zone``: a folder or an object-store prefix), the file readers (``readers``), vectorised
validation (``validation``), the loader that writes a partition's rows, rejects and file ledger in one
transaction (``loader``), and the data-quality rules over the ledger (``quality``). The ingestion
assets and the landing sensor that use them are in ``analytics_pipeline/defs/ingestion/``."""

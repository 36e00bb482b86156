"""Library code the definitions in ``analytics_pipeline.defs`` use: no assets, jobs or sensors here.

- ``sample_data``: the deterministic sample-data generator (``analytics-pipeline generate``)
- ``forecasting``: the candidate models, selection and forecast (statsforecast), and their benchmark
- ``reporting``: the weekly reports' figures, charts, documents and spreadsheets
- ``ingestion``: the datasets' contract, landing zone, readers, validation, loader and quality rules
- ``log_context``: log lines prefixed with the run, asset and partition they belong to
- ``mail``: the one SMTP sender
"""

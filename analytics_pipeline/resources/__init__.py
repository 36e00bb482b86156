"""The code location's resources: typed configuration, shown on the UI's resource page.

``definitions.py`` builds them from :class:`~analytics_pipeline.settings.Settings` (the one reader of
the environment) with ``build_resources``: every field is a validated, typed value, and secrets stay
environment variables (``dg.EnvVar``) that Dagster reads when a run builds the resource. This package
imports none of its modules itself, so ``python -m analytics_pipeline.resources.dbt`` (``make
install``) runs that module once, as the program.
"""

"""The code location's resources: typed configuration, shown on the UI's resource page.

:func:`build_resources` makes them from :class:`~analytics_pipeline.settings.Settings` (the one
reader of the environment): every field is a validated, typed value, and secrets stay environment
variables (``dg.EnvVar``) that Dagster reads when a run builds the resource.
"""

from __future__ import annotations

import dagster as dg

from analytics_pipeline.resources.alerting import AlertingResource
from analytics_pipeline.resources.dbt import dbt_resource
from analytics_pipeline.resources.landing_zone import LandingZoneResource
from analytics_pipeline.resources.reports import ReportDeliveryResource, ReportsResource
from analytics_pipeline.resources.retention import RetentionResource
from analytics_pipeline.resources.warehouse import WarehouseResource
from analytics_pipeline.settings import Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Every resource of the code location, by the name steps and sensors ask for it."""
    return {
        "warehouse": WarehouseResource.from_settings(settings),
        "dbt": dbt_resource(settings),
        "landing_zone": LandingZoneResource.from_settings(settings),
        "reports": ReportsResource.from_settings(settings),
        "report_delivery": ReportDeliveryResource.from_settings(settings),
        "alerting": AlertingResource.from_settings(settings),
        "retention": RetentionResource.from_settings(settings),
    }

"""The code location: every domain's assets, checks, jobs, schedules, sensors and resources."""

import dagster as dg

from analytics_pipeline.defs.forecasting.assets import forecasting_assets
from analytics_pipeline.defs.forecasting.schedules import (
    demand_forecast_job,
    demand_forecast_schedule,
    model_selection_job,
    model_selection_schedule,
)
from analytics_pipeline.defs.ingestion.assets import ingestion_assets
from analytics_pipeline.defs.ingestion.sensors import DIMENSION_JOB, landing_file_sensor
from analytics_pipeline.defs.operations.alerts import run_failure_alert, run_success_clears_alert
from analytics_pipeline.defs.operations.dead_runs import dead_run_monitor
from analytics_pipeline.defs.operations.freshness import with_key_mart_freshness
from analytics_pipeline.defs.operations.retention import retention_job, retention_schedule
from analytics_pipeline.defs.operations.task_health import pipeline_task_health, task_health_job, task_health_schedule
from analytics_pipeline.defs.reporting.custom import custom_report_job
from analytics_pipeline.defs.reporting.delivery import weekly_report_delivery
from analytics_pipeline.defs.reporting.schedules import weekly_report_job, weekly_report_schedule
from analytics_pipeline.defs.reporting.weekly import weekly_reports
from analytics_pipeline.defs.transform.assets import daily_dbt_models, dbt_models
from analytics_pipeline.defs.transform.kpi_checks import kpi_threshold_checks
from analytics_pipeline.defs.transform.schedules import (
    daily_pipeline_schedule,
    hourly_refresh_job,
    hourly_refresh_schedule,
)
from analytics_pipeline.executors import run_executor
from analytics_pipeline.jobs import daily_pipeline_job
from analytics_pipeline.resources.alerting import AlertingResource
from analytics_pipeline.resources.dbt import dbt_resource
from analytics_pipeline.resources.landing_zone import LandingZoneResource
from analytics_pipeline.resources.reports import ReportDeliveryResource, ReportsResource
from analytics_pipeline.resources.retention import RetentionResource
from analytics_pipeline.resources.warehouse import WarehouseResource
from analytics_pipeline.settings import Settings, get_settings


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


def build_definitions(settings: Settings) -> dg.Definitions:
    """The code location with the resources and executor ``settings`` describe."""
    return dg.Definitions(
        # the key marts' freshness policy, attached once over every asset
        assets=dg.map_asset_specs(
            with_key_mart_freshness,
            [
                *ingestion_assets,
                daily_dbt_models,
                dbt_models,
                *forecasting_assets,
                weekly_reports,
                weekly_report_delivery,
                pipeline_task_health,
            ],
        ),
        asset_checks=[kpi_threshold_checks],
        jobs=[
            daily_pipeline_job,
            hourly_refresh_job,
            DIMENSION_JOB,
            retention_job,
            demand_forecast_job,
            model_selection_job,
            weekly_report_job,
            custom_report_job,
            task_health_job,
        ],
        schedules=[
            daily_pipeline_schedule,
            hourly_refresh_schedule,
            retention_schedule,
            demand_forecast_schedule,
            model_selection_schedule,
            weekly_report_schedule,
            task_health_schedule,
        ],
        sensors=[landing_file_sensor, run_failure_alert, run_success_clears_alert, dead_run_monitor],
        resources=build_resources(settings),
        # Every job, and the runs the UI launches: each run's steps in its own process, or on Celery
        # workers by queue with ANALYTICS_EXECUTOR=celery (analytics_pipeline/executors.py).
        executor=run_executor(settings),
    )


defs = build_definitions(get_settings())

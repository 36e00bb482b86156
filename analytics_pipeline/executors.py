"""Where a run's steps execute, chosen by ``ANALYTICS_EXECUTOR``.

- ``in_process`` (the default): every step in the run's own process. On one machine the steps take
  turns on the ``warehouse`` pool anyway, and a process per step would add a code-location load to
  each of them (bench/before_after.md).
- ``celery``: dagster-celery's executor sends each step to the Celery queue of its domain, named by
  the step's ``dagster-celery/queue`` tag (:func:`on_queue`); ``analytics-pipeline worker --queue Q``
  starts a worker for a queue (:mod:`analytics_pipeline.celery_app`). The run's process still
  orchestrates: it claims the step's concurrency-pool slot before it sends the step, so the pools
  (one DuckDB writer; PostgreSQL as configured) hold across workers. Steps exchange nothing through
  memory (every asset writes the warehouse), and the outputs Dagster itself keeps go through the
  default filesystem IO manager, which the Celery executor requires: workers on other hosts share
  ``DAGSTER_HOME``'s storage folder (or run the Dagster instance on PostgreSQL and a shared volume).

Every worker needs the same ``ANALYTICS_*`` settings as the code location: it loads the same
definitions to execute the step.
"""

from __future__ import annotations

import warnings

import dagster as dg

from analytics_pipeline.settings import Settings

# dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG, spelled out so the definitions load without importing
# Celery; tests/test_executors.py checks the two agree.
QUEUE_TAG = "dagster-celery/queue"

# ingestion, dbt and the operations assets: the warehouse's writers and readers
WAREHOUSE_QUEUE = "warehouse"
# model selection and demand forecasts: CPU-bound Python
FORECASTING_QUEUE = "forecasting"
# weekly reports, their delivery and custom reports
REPORTS_QUEUE = "reports"
QUEUES = (WAREHOUSE_QUEUE, FORECASTING_QUEUE, REPORTS_QUEUE)


def on_queue(queue: str) -> dict[str, str]:
    """The op tags that send a step to ``queue`` under the Celery executor (ignored in process)."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; the queues are {', '.join(QUEUES)}")
    return {QUEUE_TAG: queue}


def run_executor(settings: Settings) -> dg.ExecutorDefinition:
    """The executor of every job and of the runs the UI launches."""
    if settings.executor != "celery":
        return dg.in_process_executor
    from dagster_celery import celery_executor

    # dagster-celery registers its step task again for every step it sends (executor._submit_task);
    # Celery 5.6+ warns each time, on the console of every run.
    warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")

    return celery_executor.configured(
        {"broker": settings.celery_broker, "backend": settings.celery_backend},
        name="celery",
        description="Each step on a Celery worker of its queue (ANALYTICS_EXECUTOR=celery).",
    )

"""The Celery app of ``analytics-pipeline worker``: dagster-celery's step task on the project's broker.

``celery -A analytics_pipeline.celery_app worker -Q <queue>`` is what the worker command runs. It is
dagster-celery's own app (``dagster_celery.app``) built from ``ANALYTICS_CELERY_BROKER`` and
``ANALYTICS_CELERY_BACKEND`` instead of a generated config module, so a worker and the executor that
sends it steps (:func:`analytics_pipeline.executors.run_executor`) read the same two settings.
"""

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from analytics_pipeline.settings import get_settings

_settings = get_settings()

app = make_app(
    CeleryExecutor.for_cli(
        broker=_settings.celery_broker,
        backend=_settings.celery_backend,
        # what a step prints (dbt's progress lines) is logged at INFO, not as Celery's default WARNING
        config_source={"worker_redirect_stdouts_level": "INFO"},
    ).app_args()
)

execute_plan = create_task(app)

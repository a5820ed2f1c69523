"""Command line: ``python -m tasks worker | beat | run-all``.

* ``worker [celery options]``: a worker consuming every queue (``make worker``); with
  ``ERP_WORKER_METRICS_PORT`` set it serves the metrics of all its pool processes on that port.
* ``beat``: the scheduler of the periodic jobs (``make beat``); run exactly one.
* ``run-all``: the API, a worker and beat together, stopped together on Ctrl-C (``make run``).
"""

from __future__ import annotations

import sys

from erp_api.observability.multiprocess import use_directory
from erp_api.settings import VAR_DIR, SettingsError, load_settings

WORKER_METRICS_DIR = VAR_DIR / "prometheus-worker"
USAGE = "usage: python -m tasks worker [celery worker options] | beat [celery beat options] | run-all"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in {"worker", "beat", "run-all"}:
        print(USAGE, file=sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if command == "run-all":
        from tasks.supervisor import run_all

        print(
            f"serving http://{settings.host}:{settings.port}/api/v1 (OpenAPI at /openapi.json); Ctrl-C stops",
            file=sys.stderr,
        )
        return run_all()
    if command == "worker" and settings.worker_metrics_port:
        # Before tasks.celery_app imports prometheus-client: the pool processes, forked later,
        # inherit the multiprocess mode and write their own files.
        use_directory(WORKER_METRICS_DIR)
    from tasks.celery_app import app

    if command == "worker":
        app.worker_main(["worker", f"--loglevel={settings.log_level}", *rest])
    else:
        app.start(["beat", f"--loglevel={settings.log_level}", *rest])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``erp-worker [worker | beat | run-all]`` (or ``python -m tasks ...``).

* ``worker [celery options]``, the default: a worker consuming every queue (``make worker``); with
  ``ERP_WORKER_METRICS_PORT`` set it serves the metrics of all its pool processes on that port.
* ``beat``: the scheduler of the periodic jobs (``make beat``); run exactly one.
* ``run-all``: the API, a worker and beat together, stopped together on Ctrl-C (``make run``).

Celery's start-up banners are shown only with ``ERP_LOG_LEVEL=DEBUG``.
"""

from __future__ import annotations

import sys
import warnings

from erp_api.observability.multiprocess import own_directory, use_directory
from erp_api.settings import VAR_DIR, SettingsError, load_settings

WORKER_METRICS_DIR = VAR_DIR / "prometheus-worker"
COMMANDS = ("worker", "beat", "run-all")
USAGE = "usage: erp-worker [worker] [celery worker options] | beat [celery beat options] | run-all"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE)
        print(__doc__)
        return 0
    if not args or args[0].startswith("-"):
        args = ["worker", *args]
    if args[0] not in COMMANDS:
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

        return run_all(settings)
    if command == "worker" and settings.worker_metrics_port:
        # Before tasks.celery_app imports prometheus-client: the pool processes, forked later,
        # inherit the multiprocess mode and write their own files, in this worker's own
        # sub-directory of the shared one, which no other worker on the host empties.
        use_directory(own_directory(settings.prometheus_multiproc_dir or WORKER_METRICS_DIR))
    from tasks.celery_app import app

    quiet = [] if settings.log_level == "DEBUG" else ["--quiet"]
    # Celery warns about any worker run as root; what makes root dangerous, pickled messages, is
    # refused here (JSON only), and containers commonly run as root.
    warnings.filterwarnings("ignore", message="You're running the worker with superuser privileges")
    if command == "worker":
        app.worker_main([*quiet, "worker", f"--loglevel={settings.log_level}", *rest])
    else:
        app.start([*quiet, "beat", f"--loglevel={settings.log_level}", *rest])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""gunicorn settings for production: `gunicorn -c python:flickrhub.gunicorn flickrhub.wsgi`
(docker/entrypoint.sh web). Each setting can be overridden on the command line.

On SIGTERM gunicorn stops accepting connections and gives requests in flight
WEB_GRACEFUL_TIMEOUT seconds to finish before it exits (the web server drains).
"""

from __future__ import annotations

import os
from typing import Any

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "30"))
# An upload of UPLOAD_MAX_BYTES over a slow link takes a while; the hub reads it as it streams.
timeout = int(os.environ.get("WEB_TIMEOUT", "120"))
# Access lines are Django's and django-prometheus's business; errors go to stderr as JSON-less
# gunicorn lines only when gunicorn itself fails.
accesslog = None


def child_exit(server: Any, worker: Any) -> None:
    """A gunicorn worker that exits takes its live gauges with it (prometheus multiprocess)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

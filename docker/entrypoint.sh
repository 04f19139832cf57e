#!/bin/sh
# FlickrHub's container entrypoint; it also runs outside a container from a checkout, with
# PYTHON pointing at the virtualenv's python.
#
#   web                   gunicorn (flickrhub/gunicorn.py): drains on SIGTERM
#   worker QUEUE...       a Dramatiq pool for those queues: DRAMATIQ_NPROCS processes, the
#                         queue's WORKER_*_CONCURRENCY threads each, and on SIGTERM jobs in hand
#                         get WORKER_SHUTDOWN_TIMEOUT_MS to finish (the rest go back to the queue)
#   migrate               apply database migrations (compose runs it once, before the others)
#   health web|worker     exit 0 if this container's process is alive (compose health checks)
#   manage ARGS...        python manage.py ARGS...
#   anything else         run as given
set -eu

APP_DIR="${FLICKRHUB_HOME:-$(cd "$(dirname "$0")/.." && pwd)}"
PYTHON="${PYTHON:-python}"
cd "$APP_DIR"

die() {
    echo "entrypoint: $*" >&2
    exit 64
}

# Prometheus multiprocess mode wants an empty directory when the processes start.
fresh_metrics_dir() {
    if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
        rm -rf "$PROMETHEUS_MULTIPROC_DIR"
        mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    fi
}

# Threads per worker process for a queue (the original's WORKER_*_CONCURRENCY names).
threads_for() {
    case "$1" in
        flickr_rest) echo "${WORKER_REST_CONCURRENCY:-${WORKER_CONCURRENCY:-8}}" ;;
        flickr_upload) echo "${WORKER_UPLOAD_CONCURRENCY:-2}" ;;
        flickr_replace) echo "${WORKER_REPLACE_CONCURRENCY:-2}" ;;
        *) echo "${WORKER_CONCURRENCY:-8}" ;;
    esac
}

health_web() {
    exec "$PYTHON" - <<'PY'
import os, sys, urllib.request
host = (os.environ.get("ALLOWED_HOSTS") or "localhost").split(",")[0].strip().lstrip(".")
host = "localhost" if host in ("", "*") else host
request = urllib.request.Request(
    f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz", headers={"Host": host}
)
try:
    with urllib.request.urlopen(request, timeout=5) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:
    print(f"health: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}

health_worker() {
    file="${WORKER_HEARTBEAT_FILE:-}"
    [ -n "$file" ] || die "health worker needs WORKER_HEARTBEAT_FILE"
    [ -f "$file" ] || { echo "health: no heartbeat yet ($file)" >&2; exit 1; }
    interval="${WORKER_HEARTBEAT_SECONDS:-10}"
    limit=$((interval * 3))
    if [ "$limit" -lt 30 ]; then limit=30; fi
    age=$(($(date +%s) - $(stat -c %Y "$file")))
    if [ "$age" -gt "$limit" ]; then
        echo "health: last heartbeat ${age}s ago (limit ${limit}s)" >&2
        exit 1
    fi
}

# Every process of the image writes its metrics there (PROMETHEUS_MULTIPROC_DIR is set in the
# image), one-off commands included, so it must exist.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then mkdir -p "$PROMETHEUS_MULTIPROC_DIR"; fi

command="${1:-web}"
[ $# -gt 0 ] && shift
case "$command" in
    web)
        fresh_metrics_dir
        exec "$PYTHON" -m gunicorn -c python:flickrhub.gunicorn "$@" flickrhub.wsgi
        ;;
    worker)
        [ $# -gt 0 ] || die "worker needs at least one queue, e.g. worker flickr_rest"
        threads=0
        for queue in "$@"; do
            t=$(threads_for "$queue")
            if [ "$t" -gt "$threads" ]; then threads=$t; fi
        done
        fresh_metrics_dir
        exec "$PYTHON" manage.py rundramatiq \
            --processes "${DRAMATIQ_NPROCS:-1}" \
            --threads "$threads" \
            --worker-shutdown-timeout "${WORKER_SHUTDOWN_TIMEOUT_MS:-30000}" \
            --queues "$@"
        ;;
    migrate)
        exec "$PYTHON" manage.py migrate --no-input "$@"
        ;;
    health)
        case "${1:-}" in
            web) health_web ;;
            worker) health_worker ;;
            *) die "health web|worker" ;;
        esac
        ;;
    manage)
        exec "$PYTHON" manage.py "$@"
        ;;
    *)
        exec "$command" "$@"
        ;;
esac

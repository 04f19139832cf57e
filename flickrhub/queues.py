"""How many messages wait in each queue, read from the broker.

RabbitMQ reports a queue's ready messages in the answer to a passive `queue.declare` (the
management plugin is not assumed). The count is read on a connection of its own, opened and
closed for the query, so it never disturbs the connections that publish and consume, and it is
kept a few seconds so that scrapes and dashboard views do not each ask again.
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass, field

import dramatiq
import structlog
from dramatiq.common import dq_name, xq_name

log = structlog.get_logger(__name__)

QUEUE_PREFIX = "flickr_"
# How long an answer is reused (seconds).
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class QueueDepths:
    # queue -> {"ready": n, "delayed": n, "dead": n}
    queues: dict[str, dict[str, int]] = field(default_factory=dict)
    error: str = ""
    at: float = 0.0


_cached: QueueDepths | None = None
_lock = threading.Lock()


_actors_imported = False


def _import_actors() -> None:
    """Imports every app's tasks module once, as `rundramatiq` does, so that a web process that
    has not published yet knows every queue (including ones other apps add)."""
    global _actors_imported
    if _actors_imported:
        return
    from django.apps import apps
    from django.conf import settings
    from django.utils.module_loading import module_has_submodule

    for config in apps.get_app_configs():
        for name in getattr(settings, "DRAMATIQ_AUTODISCOVER_MODULES", ("tasks",)):
            if module_has_submodule(config.module, name):
                importlib.import_module(f"{config.name}.{name}")
    _actors_imported = True


def queue_names(broker: dramatiq.Broker | None = None) -> list[str]:
    """The work queues the hub's actors declare (`flickr_*`; not their delay and dead-letter
    queues, nor django_dramatiq's housekeeping `default` queue, which no hub worker consumes)."""
    _import_actors()
    broker = broker or dramatiq.get_broker()
    return sorted(
        q
        for q in broker.get_declared_queues()
        if q.startswith(QUEUE_PREFIX) and not q.endswith((".DQ", ".XQ"))
    )


def queue_depths(*, fresh: bool = False) -> QueueDepths:
    global _cached
    with _lock:
        if not fresh and _cached is not None and time.monotonic() - _cached.at < CACHE_SECONDS:
            return _cached
        broker = dramatiq.get_broker()
        try:
            queues = _read(broker)
            depths = QueueDepths(queues=queues, at=time.monotonic())
        except Exception as exc:  # the broker is down or refused us: say so, do not raise
            log.warning("queue_depths_unavailable", error=type(exc).__name__)
            depths = QueueDepths(error=f"{type(exc).__name__}: {exc}"[:200], at=time.monotonic())
        _cached = depths
        return depths


def _read(broker: dramatiq.Broker) -> dict[str, dict[str, int]]:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker
    from dramatiq.brokers.stub import StubBroker

    names = queue_names(broker)
    if isinstance(broker, StubBroker):
        return {
            name: {
                "ready": broker.queues[name].qsize() if name in broker.queues else 0,
                "delayed": broker.queues[dq_name(name)].qsize() if dq_name(name) in broker.queues else 0,
                "dead": len(broker.dead_letters_by_queue.get(name, [])),
            }
            for name in names
        }
    if isinstance(broker, RabbitmqBroker):
        return _read_rabbitmq(names)
    raise RuntimeError(f"queue depths are not known for {type(broker).__name__}")


def _read_rabbitmq(names: list[str]) -> dict[str, dict[str, int]]:
    import pika
    import pika.exceptions
    from django.conf import settings

    params = pika.URLParameters(settings.BROKER_URL)
    params.connection_attempts = 1
    params.heartbeat = 0
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        out: dict[str, dict[str, int]] = {}
        for name in names:
            counts: dict[str, int] = {}
            for kind, queue in (("ready", name), ("delayed", dq_name(name)), ("dead", xq_name(name))):
                try:
                    answer = channel.queue_declare(queue=queue, passive=True)
                    counts[kind] = int(answer.method.message_count)
                except pika.exceptions.ChannelClosedByBroker:
                    # 404: nobody declared it yet, so nothing waits in it. The broker closed
                    # the channel for asking; take a new one.
                    counts[kind] = 0
                    channel = connection.channel()
            out[name] = counts
        return out
    finally:
        try:
            connection.close()
        except Exception:  # noqa: S110 (closing a connection that broke is not an error)
            pass

"""The throughput baseline: a bare Dramatiq actor making the hub's upstream call — the same
OAuth 1.0a-signed POST of `flickr.test.echo` to the sandbox, one keep-alive session per thread,
the JSON answer parsed — with no database, cache, quota or breaker.

Its broker comes from the environment: BENCH_BARE_BROKER is an amqp:// URL (RabbitMQ, run by
`python -m dramatiq bench.bare_actor -p 1 -t 8 -Q bench_bare`) or `stub` (the in-memory broker
of the embedded default, run by `python -m bench.bare_actor --jobs N --threads T` in one
process). BENCH_SANDBOX_URL, BENCH_TOKEN and BENCH_TOKEN_SECRET say what to call and as whom.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import dramatiq
import requests
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from requests_oauthlib import OAuth1

from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET

QUEUE = "bench_bare"
_BROKER_URL = os.environ.get("BENCH_BARE_BROKER", "stub")
broker: dramatiq.Broker = (
    StubBroker() if _BROKER_URL == "stub" else RabbitmqBroker(url=_BROKER_URL, confirm_delivery=False)
)
dramatiq.set_broker(broker)

_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def bare_echo(bench_id: str) -> None:
    auth = OAuth1(
        SANDBOX_CONSUMER_KEY,
        client_secret=SANDBOX_CONSUMER_SECRET,
        resource_owner_key=os.environ["BENCH_TOKEN"],
        resource_owner_secret=os.environ["BENCH_TOKEN_SECRET"],
        signature_method="HMAC-SHA1",
        signature_type="AUTH_HEADER",
    )
    response = _session().post(
        f"{os.environ['BENCH_SANDBOX_URL']}/services/rest/",
        data={
            "bench_id": bench_id,
            "method": "flickr.test.echo",
            "format": "json",
            "nojsoncallback": "1",
        },
        auth=auth,
        timeout=30,
    )
    response.raise_for_status()
    if response.json().get("stat") != "ok":
        raise RuntimeError("the sandbox did not answer ok")


def enqueue(count: int, prefix: str = "bare") -> None:
    for n in range(count):
        bare_echo.send(f"{prefix}-{n}")
    if isinstance(broker, RabbitmqBroker):
        # Publishes go out without confirms; closing the channel is a handshake RabbitMQ answers
        # only after the publishes before it. A process that just exits can lose its last ones
        # (41 of 20,000 once), and the drain then waits for calls that never come.
        broker.close()


def main() -> None:
    """Embedded baseline: enqueue on the in-memory broker, run an in-process worker to the end."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    assert isinstance(broker, StubBroker), "BENCH_BARE_BROKER=stub for the in-process baseline"
    enqueue(args.jobs)
    worker = dramatiq.Worker(broker, worker_threads=args.threads, worker_timeout=100)
    started = time.monotonic()
    worker.start()
    broker.join(QUEUE, timeout=30 * 60_000)
    worker.join()
    worker.stop()
    print(f"{args.jobs} jobs in {time.monotonic() - started:.2f} s", flush=True)


if __name__ == "__main__":
    main()

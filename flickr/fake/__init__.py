"""The Flickr sandbox: a faithful, deterministic Flickr stand-in for FlickrHub.

A plain WSGI application (werkzeug + oauthlib, no Django inside) that behaves the way
shared/FLICKR-API.md says Flickr does; the § numbers in comments refer to that file.

    from flickr.fake import FakeFlickr, SandboxServer, SANDBOX_CONSUMER_KEY
    app = FakeFlickr(seed=1)                      # the same world for the same seed
    server = SandboxServer(app, port=0).start()   # threaded, in a daemon thread
    token, secret, nsid = app.state.demo_token("write")
    ... point the hub at f"{server.url}/services/rest/" ...
    server.stop()

Served paths: /services/oauth/{request_token,authorize,access_token}, /services/rest/,
/services/upload/, /services/replace/, and with control=True the JSON control endpoint
/__sandbox/ (counters, calls, users, reset, faults, quota, tokens, consumers, keys/<key>/expire).

FakeFlickr keyword arguments: quota_per_hour (None = unlimited), control, latency_ms,
request_token_ttl, upload_max_bytes, upload_limit (items per person), search_cap,
photos_per_user, calls_log_size, clock (a callable returning unix time, for tests).

Knobs at run time:
    app.state    add_consumer, issue_access_token, demo_token, revoke_token, approve, deny,
                 expire_key, restore_key, set_upload_limit, users, demo_user, library
    app.counters snapshot(), calls(limit=...), reset()
    app.faults   add(kind=..., method=None, consumer_key=None, count=None, probability=1.0,
                 **opts), clear(), active(); kinds: latency (ms | min_ms/max_ms |
                 mean_ms/stddev_ms), http_error (status, retry_after), rate_limit
                 (retry_after), flickr_error (code, message), drop_connection, key_expired
    app.set_quota(per_hour)

`flickr.fake.testing` has helpers for tests: SandboxClient, signed_upload, tiny_png, tiny_jpeg.
"""

from __future__ import annotations

from .app import FakeFlickr
from .server import SandboxServer
from .state import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET

__all__ = ["SANDBOX_CONSUMER_KEY", "SANDBOX_CONSUMER_SECRET", "FakeFlickr", "SandboxServer"]

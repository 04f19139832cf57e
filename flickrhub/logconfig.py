"""Logging: one JSON object per line on stdout (readable console lines with DEBUG on), every
line redacted.

structlog renders both its own events and the standard library's (Django, Dramatiq, pika), so
every line passes through `redact` — the one place that keeps tokens, secrets and API keys out
of the logs.
"""

from __future__ import annotations

import functools
import logging.config
import re
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"

# Keys whose values are never logged, whatever they hold.
_SECRET_KEY_RE = re.compile(
    r"(token|secret|password|api_key|apikey|consumer_key|authorization|signature|verifier|cookie|x-api-key)",
    re.IGNORECASE,
)
# Secret-looking fragments inside free text: OAuth parameters in URLs and bodies, bearer
# headers, FlickrHub API keys.
_SECRET_TEXT_RES = [
    # quoted (in an Authorization header) before bare (in a query string)
    re.compile(
        r"(oauth_(?:token|token_secret|signature|verifier|consumer_key)=\\?\")[^\"\\]+", re.IGNORECASE
    ),
    re.compile(r"(oauth_(?:token|token_secret|signature|verifier|consumer_key)=)[^&\s\"',]+", re.IGNORECASE),
    re.compile(r"(\bapi_key=)[^&\s\"',]+", re.IGNORECASE),
    re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
    re.compile(r"()\bfh_[A-Za-z0-9]{6,}_[A-Za-z0-9_-]{16,}"),
    re.compile(r"()\bwhsec_[A-Za-z0-9+/=]{16,}"),
    # then the rest of an Authorization header quoted in text ("Authorization: OAuth oauth_consumer_key=…")
    re.compile(r"(\bauthorization['\"]?\s*[:=]\s*['\"]?)[^'\"\n]+", re.IGNORECASE),
]

# Values the vault has decrypted in this process: redacted wherever they show up, even inside
# an exception message that quotes a URL or a body. A few are each looked for in a text; many
# (a worker that has run jobs for thousands of accounts holds two per account) would make every
# log line search for each, so then a text is scanned once instead, every window of
# _MIN_SECRET characters looked up among the secrets' beginnings.
_known_secrets: set[str] = set()
_known_lock = threading.Lock()
_KNOWN_SECRETS_MAX = 10_000
_MIN_SECRET = 6
_LOOK_FOR_EACH_UP_TO = 64
# Read without the lock: `_few` and each tuple in `_by_start` are replaced, never changed in place.
_few: tuple[str, ...] = ()
_by_start: dict[str, tuple[str, ...]] = {}


def register_secret(value: str) -> None:
    """Remember a secret so that no later log line can contain it."""
    global _few, _by_start
    if not value or len(value) < _MIN_SECRET or value in _known_secrets:
        return
    with _known_lock:
        if len(_known_secrets) >= _KNOWN_SECRETS_MAX:
            _known_secrets.clear()
            _by_start = {}
        _known_secrets.add(value)
        start = value[:_MIN_SECRET]
        _by_start[start] = (*_by_start.get(start, ()), value)
        _few = tuple(_known_secrets) if len(_known_secrets) <= _LOOK_FOR_EACH_UP_TO else ()


def _secrets_in(text: str) -> list[str]:
    few = _few
    if few or not _known_secrets:
        return [secret for secret in few if secret in text]
    starts, found = _by_start, set()
    for i in range(len(text) - _MIN_SECRET + 1):
        for secret in starts.get(text[i : i + _MIN_SECRET], ()):
            if text.startswith(secret, i):
                found.add(secret)
    return list(found)


# Every pattern above needs one of these words; a text without any (most values: ids, method
# names, states) is searched once instead of once per pattern.
_SECRET_TEXT_HINT = re.compile(r"oauth_|api_key=|bearer|fh_|whsec_|authorization", re.IGNORECASE)


def redact_text(text: str) -> str:
    if len(text) < _MIN_SECRET:  # too short to hold any pattern's secret or a registered one
        return text
    if _SECRET_TEXT_HINT.search(text):
        for pattern in _SECRET_TEXT_RES:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    found = _secrets_in(text)
    if found:
        # Longest first: a secret that begins another must not leave the other's tail behind.
        for secret in sorted(found, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
    return text


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    """Whether a key's value is never logged (an event's keys are a small, fixed set, so the
    answer is remembered instead of searching the key on every line)."""
    return bool(_SECRET_KEY_RE.search(key)) and key not in _NOT_SECRET_KEYS


def _redact_value(key: str, value: Any) -> Any:
    if key and _is_secret_key(key):
        return REDACTED if value not in (None, "", [], {}) else value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value("", v) for v in value]
    return value


# Names that contain a secret-looking word but hold no secret.
_NOT_SECRET_KEYS = frozenset({"event", "token_status", "has_token", "secret_set"})


def redact(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: masks secret keys and secret-looking text in every event."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


def configure_logging(*, level: str = "INFO", json: bool = True, service: str, env: str) -> None:
    def add_service(_l: Any, _n: str, ed: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        ed.setdefault("service", service)
        ed.setdefault("env", env)
        return ed

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
        structlog.processors.format_exc_info,
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structured": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        renderer,
                    ],
                    "foreign_pre_chain": shared,
                }
            },
            "handlers": {
                "stdout": {
                    "class": "logging.StreamHandler",
                    "formatter": "structured",
                    "stream": "ext://sys.stdout",
                }
            },
            "root": {"handlers": ["stdout"], "level": level},
            "loggers": {
                # pika narrates every connection step at INFO.
                "pika": {"level": "WARNING"},
                "django.db.backends": {"level": "WARNING"},
            },
        }
    )
    from flickrhub.obs import ship

    structlog.configure(
        # The hub's own events: dropped early below the level, shipped to the external log sink
        # (OBS_API_URL) after redaction, then rendered like every other line.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            ship,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

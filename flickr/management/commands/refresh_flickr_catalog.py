"""manage.py refresh_flickr_catalog — rebuild flickr/methods.json from Flickr's reflection."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from flickr.catalog import CATALOG_PATH, PERMS_BY_LEVEL


class Command(BaseCommand):
    help = (
        "Ask Flickr (FLICKR_REST_URL, with FLICKR_API_KEY) for every method it has "
        "(flickr.reflection.getMethods) and the permission each needs (getMethodInfo), and write "
        "the catalog the hub uses to decide what it may cache and retry. About 220 calls, "
        "taken from the key's hourly quota. --check only compares."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--output", default=str(CATALOG_PATH), help="where to write (default: %(default)s)"
        )
        parser.add_argument(
            "--check", action="store_true", help="do not write; exit 1 if the catalog differs from Flickr's"
        )

    def handle(self, *args: Any, output: str, check: bool, **options: Any) -> None:
        if not settings.FLICKR_API_KEY:
            raise CommandError("FLICKR_API_KEY is not set: reflection calls need the hub's API key.")
        session = requests.Session()
        names = [
            m["_content"] for m in self._call(session, "flickr.reflection.getMethods")["methods"]["method"]
        ]
        methods: dict[str, dict[str, int | str]] = {}
        for name in sorted(names):
            info = self._call(session, "flickr.reflection.getMethodInfo", method_name=name)["method"]
            level = int(info.get("requiredperms", 0))
            if level not in PERMS_BY_LEVEL:
                raise CommandError(
                    f"{name}: Flickr reports requiredperms={level}, which the hub does not know."
                )
            methods[name] = {
                "perms": PERMS_BY_LEVEL[level],
                "needslogin": int(info.get("needslogin", 0)),
                "needssigning": int(info.get("needssigning", 0)),
            }
        path = Path(output)
        if check:
            current = json.loads(path.read_text())["methods"] if path.exists() else {}
            if current != methods:
                added = sorted(set(methods) - set(current))
                removed = sorted(set(current) - set(methods))
                changed = sorted(k for k in set(methods) & set(current) if methods[k] != current[k])
                raise CommandError(
                    f"{path} differs from Flickr's reflection: added {added[:10]}, removed {removed[:10]}, "
                    f"changed {changed[:10]}. Run without --check to rewrite it."
                )
            self.stdout.write(f"{path} matches Flickr's reflection ({len(methods)} methods).")
            return
        document = {
            "source": f"flickr.reflection.getMethods and getMethodInfo at {settings.FLICKR_REST_URL}",
            "refreshed_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "methods": methods,
        }
        path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
        self.stdout.write(f"Wrote {len(methods)} methods to {path}.")

    def _call(self, session: requests.Session, method: str, **params: str) -> dict[str, Any]:
        # Reflection needs no user: the API key alone, as Flickr documents for such methods.
        data = {"method": method, "api_key": settings.FLICKR_API_KEY, "format": "json", "nojsoncallback": "1"}
        try:
            response = session.post(
                settings.FLICKR_REST_URL, data={**data, **params}, timeout=settings.FLICKR_TIMEOUT_SECONDS
            )
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise CommandError(f"{method}: Flickr could not be asked ({type(exc).__name__}).") from None
        if body.get("stat") != "ok":
            raise CommandError(f"{method}: Flickr answered error {body.get('code')}: {body.get('message')}")
        return dict(body)

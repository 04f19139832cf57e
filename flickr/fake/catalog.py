"""The method catalog: Flickr's own reflection output, kept in `catalog.json`.

It answers flickr.reflection.* and drives the generic checks every REST call goes through:
does the method exist (112), must it be signed (97), does it need a login (99) and which
permission level, and which arguments are required (FLICKR-API.md §5.1).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOG_PATH = Path(__file__).with_name("catalog.json")

# Flickr's permission ladder (§1.3): write implies read, delete implies write.
PERMS = ("none", "read", "write", "delete")


def perms_level(perms: str) -> int:
    return PERMS.index(perms)


@dataclass(frozen=True)
class Argument:
    name: str
    optional: bool
    description: str


@dataclass(frozen=True)
class ErrorCode:
    code: int
    message: str
    description: str


@dataclass(frozen=True)
class MethodInfo:
    name: str
    needslogin: bool
    needssigning: bool
    requiredperms: int
    description: str
    response: str | None
    explanation: str | None
    arguments: tuple[Argument, ...]
    errors: tuple[ErrorCode, ...]
    universal_errors: tuple[int, ...]

    @property
    def required_arguments(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arguments if not a.optional)

    def error(self, code: int) -> ErrorCode | None:
        return next((e for e in self.errors if e.code == code), None)

    def missing_argument_error(self, argument: str) -> ErrorCode | None:
        """Which of the method's own errors Flickr would answer for a missing argument.

        The catalog has no such mapping, so prefer an explicit "required/missing" error, then
        one naming the argument's noun ("photo_id" -> "Photo not found"), then the lowest
        code, which is almost always "X not found" (§2.4).
        """
        if not self.errors:
            return None
        for e in self.errors:
            if re.search(r"required|missing|not enough", e.message, re.IGNORECASE):
                return e
        noun = re.sub(r"^primary_|_ids?$", "", argument).replace("_", " ")
        for e in self.errors:
            if re.search(rf"\b{re.escape(noun)}\b", e.message, re.IGNORECASE):
                return e
        return min(self.errors, key=lambda e: e.code)


@dataclass(frozen=True)
class Catalog:
    methods: dict[str, MethodInfo]
    universal: dict[int, ErrorCode]

    def get(self, name: str) -> MethodInfo | None:
        return self.methods.get(name)

    def names(self) -> list[str]:
        return sorted(self.methods)


def _method(raw: dict) -> MethodInfo:
    return MethodInfo(
        name=raw["name"],
        needslogin=bool(raw["needslogin"]),
        needssigning=bool(raw["needssigning"]),
        requiredperms=int(raw["requiredperms"]),
        description=raw.get("description", ""),
        response=raw.get("response"),
        explanation=raw.get("explanation"),
        arguments=tuple(
            Argument(a["name"], bool(a["optional"]), a.get("description", "")) for a in raw["arguments"]
        ),
        errors=tuple(ErrorCode(e["code"], e["message"], e.get("description", "")) for e in raw["errors"]),
        universal_errors=tuple(raw["universal_errors"]),
    )


@cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Catalog(
        methods={m["name"]: _method(m) for m in raw["methods"]},
        universal={
            e["code"]: ErrorCode(e["code"], e["message"], e.get("description", ""))
            for e in raw["universal_errors"]
        },
    )

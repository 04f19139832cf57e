"""How the API's key authentication appears in the OpenAPI schema.

Without this the schema says nothing about the API key, so generated clients and schema-driven
testers send requests that can only be refused with 401.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = ["BearerApiKey", "ApiKeyHeader"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        # Either header works (OR), which OpenAPI spells as a list of requirements.
        return [{"BearerApiKey": []}, {"ApiKeyHeader": []}]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "X-API-Key: <API key>"},
        ]

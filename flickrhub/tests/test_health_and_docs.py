"""Health answers, the OpenAPI schema and its docs page."""

from __future__ import annotations

import re

import yaml


def test_health_keeps_the_original_shape(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_cache_and_broker(client, db):
    body = client.get("/readyz").json()
    assert (body["status"], body["checks"]) == ("ok", {"database": "ok", "cache": "ok", "broker": "ok"})


def test_the_schema_describes_every_endpoint(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/flickr/rest", "/api/v1/flickr/jobs/status", "/api/v1/flickr/jobs/{job_id}"} <= set(
        schema["paths"]
    )
    enqueue = schema["paths"]["/api/v1/flickr/rest"]["post"]
    assert {"202", "400", "401", "404", "503"} <= set(enqueue["responses"])


def test_the_docs_page_is_served_by_the_hub_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger" in html.lower()
    # Every script and stylesheet comes from the hub itself: no absolute or protocol-relative URL.
    assets = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', html)
    assert any("swagger-ui" in a for a in assets)
    assert [a for a in assets if a.startswith(("http:", "https:", "//"))] == []
    assert "unpkg.com" not in html and "jsdelivr" not in html


def test_the_home_page_links_the_docs(client):
    html = client.get("/").content.decode()
    assert "/api/docs/" in html

"""The shared error contract: every failure is JSON with a request id; crashes carry an
ErrorDNA fingerprint that matches for the same failure and never leak the exception text."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from aitrading.core.infrastructure.central_hub import HealthStatus, HubHealth
from aitrading.services.common.http import install_common


def app_that_fails() -> FastAPI:
    app = FastAPI()
    install_common(
        app, "test-service", lambda: HubHealth(HealthStatus.HEALTHY, "", {}), CollectorRegistry()
    )

    @app.get("/boom/{n}")
    async def boom(n: int) -> None:
        raise RuntimeError(f"database password=s3cret-{n} rejected")

    return app


async def test_crashes_answer_500_with_a_stable_fingerprint_and_no_secret() -> None:
    transport = httpx.ASGITransport(app=app_that_fails(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        first = await http.get("/boom/1", headers={"x-request-id": "abc"})
        second = await http.get("/boom/2")
    assert first.status_code == 500
    body = first.json()["error"]
    assert body["code"] == "internal"
    assert body["request_id"] == "abc"
    assert "s3cret" not in first.text
    fingerprint = body["message"].split()[2].rstrip(";")
    assert len(fingerprint) == 32
    assert fingerprint in second.json()["error"]["message"]  # same failure, same group


async def test_unknown_routes_and_bad_parameters_are_json_errors() -> None:
    transport = httpx.ASGITransport(app=app_that_fails())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        missing = await http.get("/nowhere")
        invalid = await http.get("/boom/not-a-number")
    assert missing.json()["error"]["code"] == "not_found"
    assert invalid.status_code == 422
    assert invalid.json()["error"]["details"][0]["field"] == "n"

"""GET /metrics in-process: what is counted, under which labels, and readiness while serving.

The same figures across `serve --workers N` processes, and readiness during a real shutdown,
are in test_scale_out.py, which starts real servers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import pytest
from drawings import draw, encode
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from handwritten.serve import create_app

PNG = {"Content-Type": "image/png"}
REQUESTS = "handwritten_http_requests_total"


SEVEN = encode(draw())
BLANK = encode(Image.new("L", (280, 280), 255))


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(figures: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    """One sample's value; 0 when it is absent, as a counter that never moved."""
    return figures.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """A fresh app: its registry is its own, so the counts below start at zero."""
    with TestClient(create_app(model="seed")) as client:
        yield client


@pytest.fixture(scope="module")
def figures() -> dict[tuple[str, frozenset], float]:
    """/metrics of a fresh app after a known mix of requests: good ones, client mistakes,
    files, 404s and a 405."""
    with TestClient(create_app(model="seed")) as client:
        return _mixed_requests(client)


def _mixed_requests(client: TestClient) -> dict[tuple[str, frozenset], float]:
    for _ in range(3):
        assert client.post("/api/predict", content=SEVEN, headers=PNG).status_code == 200
    assert client.post("/api/predict", content=BLANK, headers=PNG).status_code == 422
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    for path in ("/nowhere/1", "/nowhere/2", "/api/nothing-here"):
        assert client.get(path).status_code == 404
    assert client.get("/api/predict").status_code == 405
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return samples(response.text)


def test_requests_are_counted_by_route_method_and_status(figures: dict) -> None:
    assert value(figures, REQUESTS, route="/api/predict", method="POST", status="200") == 3
    assert value(figures, REQUESTS, route="/api/predict", method="POST", status="422") == 1
    assert value(figures, REQUESTS, route="/api/predict", method="GET", status="405") == 1
    assert value(figures, REQUESTS, route="/static/{path}", method="GET", status="200") == 2


def test_errors_are_counted_by_route_and_status_and_successes_are_not(figures: dict) -> None:
    errors = "handwritten_http_errors_total"
    assert value(figures, errors, route="/api/predict", status="422") == 1
    assert value(figures, errors, route="/api/predict", status="405") == 1
    assert value(figures, errors, route="unmatched", status="404") == 3
    assert value(figures, errors, route="/api/predict", status="200") == 0
    assert value(figures, errors, route="/static/{path}", status="200") == 0


def test_routes_are_templates_so_random_paths_add_no_series(figures: dict) -> None:
    routes = {dict(labels).get("route") for _, labels in figures} - {None}
    assert routes == {"/api/predict", "/static/{path}", "unmatched"}
    assert value(figures, REQUESTS, route="unmatched", method="GET", status="404") == 3


def test_latency_is_a_histogram_by_route(figures: dict) -> None:
    name = "handwritten_http_request_duration_seconds"
    assert value(figures, f"{name}_count", route="/api/predict") == 5
    assert value(figures, f"{name}_sum", route="/api/predict") > 0
    buckets = sorted(
        (float(dict(labels)["le"]), count)
        for (sample, labels), count in figures.items()
        if sample == f"{name}_bucket" and dict(labels)["route"] == "/api/predict"
    )
    counts = [count for _, count in buckets]
    assert counts == sorted(counts), "cumulative buckets never decrease"
    assert buckets[-1] == (float("inf"), 5)


def test_only_the_scrape_itself_is_in_progress_once_the_others_are_answered(
    figures: dict,
) -> None:
    assert value(figures, "handwritten_http_requests_in_progress") == 1


def test_the_model_in_use_is_published(figures: dict) -> None:
    assert value(figures, "handwritten_model_info", model="seed", runtime="onnx") == 1


def test_a_scrape_counts_itself_afterwards(client: TestClient) -> None:
    def scrapes() -> float:
        figures = samples(client.get("/metrics").text)
        return value(figures, REQUESTS, route="/metrics", method="GET", status="200")

    first = scrapes()
    assert scrapes() == first + 1


def test_a_server_fault_is_counted_as_a_500_under_its_route() -> None:
    class Broken:
        path = None
        card: ClassVar = {"name": "broken"}

        def probabilities(self, images: np.ndarray) -> np.ndarray:
            raise RuntimeError("the network fell over")

    with TestClient(create_app(Broken()), raise_server_exceptions=False) as client:
        assert client.post("/api/predict", content=SEVEN, headers=PNG).status_code == 500
        figures = samples(client.get("/metrics").text)
    assert value(figures, "handwritten_http_errors_total", route="/api/predict", status="500") == 1
    assert value(figures, "handwritten_model_info", model="broken", runtime="keras") == 1


def test_each_app_counts_only_its_own_requests(client: TestClient) -> None:
    """Per-app registries: a second app in the same process starts from zero."""
    with TestClient(create_app(model="seed")) as other:
        figures = samples(other.get("/metrics").text)
    assert value(figures, REQUESTS, route="/api/predict", method="POST", status="200") == 0


def test_readiness_answers_like_health_while_serving(client: TestClient) -> None:
    ready = client.get("/api/health/ready")
    assert ready.status_code == 200
    assert ready.json() == client.get("/api/health").json()
    operation = client.get("/openapi.json").json()["paths"]["/api/health/ready"]["get"]
    assert "503" in operation["responses"]


def test_made_up_methods_fold_into_one_series() -> None:
    """Each made-up method (XMETHOD1, ...) was a new label value, kept for good: 2,000 of
    them grew /metrics from 50 KB to 796 KB. Unknown methods now count as `other`."""
    with TestClient(create_app(model="seed")) as client:
        for number in range(40):
            assert client.request(f"XMETHOD{number}", "/api/health").status_code == 405
            assert client.request(f"BREW{number}", "/nowhere").status_code == 404
        assert client.request("PATCH", "/api/health").status_code == 405
        figures = samples(client.get("/metrics").text)
    methods = {dict(labels).get("method") for _, labels in figures} - {None}
    assert methods == {"PATCH", "other"}  # The scrape counts itself only afterwards.
    assert value(figures, REQUESTS, route="/api/health", method="other", status="405") == 40
    assert value(figures, REQUESTS, route="unmatched", method="other", status="404") == 40

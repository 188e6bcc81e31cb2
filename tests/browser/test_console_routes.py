"""The console's server side without servers: static files, settings and the metrics parsing behind
GET /api/v1/cameras."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.console_routes import ConsoleSettings, _per_minute, install_console, parse_capture_metrics

CAPTURE_AND_NORMALIZER = """
# TYPE platewatch_capture_camera_connected gauge
platewatch_capture_camera_connected{camera="cam-a"} 1.0
platewatch_capture_camera_connected{camera="cam-b"} 0.0
# TYPE platewatch_capture_last_frame_timestamp_seconds gauge
platewatch_capture_last_frame_timestamp_seconds{camera="cam-a"} 1.7e9
# TYPE platewatch_capture_frames_total counter
platewatch_capture_frames_total{camera="cam-a",outcome="published"} 120.0
platewatch_capture_frames_total{camera="cam-a",outcome="dropped_motion"} 30.0
# TYPE platewatch_reads_total counter
platewatch_reads_total{camera="cam-a",agency="pd-1"} 7.0
platewatch_reads_total{camera="cam-a",agency="pd-2"} 3.0
"""


def test_capture_and_normalizer_series_are_read_per_camera() -> None:
    sample = parse_capture_metrics(CAPTURE_AND_NORMALIZER)
    assert sample.connected == {"cam-a": True, "cam-b": False}
    assert sample.last_frame == {"cam-a": 1.7e9}
    assert sample.published == {"cam-a": 120.0}, "only published frames count"
    assert sample.reads == {"cam-a": 10.0}, "summed over agencies"


def test_rates_per_minute_since_the_previous_scrape() -> None:
    previous = (100.0, {"cam-a": 60.0}, {"cam-a": 4.0})
    assert _per_minute("cam-a", {"cam-a": 120.0}, previous, 1, 130.0) == 120.0
    assert _per_minute("cam-a", {"cam-a": 10.0}, previous, 2, 130.0) == 12.0
    # A restarted process resets its counter: count from zero rather than report a negative rate.
    assert _per_minute("cam-a", {"cam-a": 5.0}, previous, 1, 130.0) == 10.0
    assert _per_minute("cam-a", {"cam-a": 5.0}, None, 1, 130.0) is None
    assert _per_minute("cam-z", {}, previous, 1, 130.0) is None


def test_console_is_served_with_its_bundled_assets_and_settings() -> None:
    app = FastAPI()
    install_console(app, ConsoleSettings(console_tile_url="https://tiles.invalid/{z}/{x}/{y}.png"))
    client = TestClient(app)
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/"
    index = client.get("/console/")
    assert index.status_code == 200 and 'src="js/app.js"' in index.text
    assert index.headers["cache-control"] == "no-cache"
    # Everything the page loads is local: no http(s) URL in the page or its scripts.
    for path in ("/console/", "/console/js/app.js", "/console/js/map.js", "/console/console.css"):
        body = client.get(path).text
        assert "http://" not in body and "https://" not in body, path
    leaflet = client.get("/console/vendor/leaflet/leaflet.js")
    assert leaflet.status_code == 200 and "Leaflet" in leaflet.text[:500]
    assert client.get("/console/vendor/leaflet/LICENSE").text.startswith("BSD 2-Clause License")
    assert client.get("/console/config.json").json() == {
        "tile_url": "https://tiles.invalid/{z}/{x}/{y}.png",
        "tile_attribution": "",
        "api_prefix": "/api/v1",
    }
    assert client.get("/console/no-such-file.js").status_code == 404


def test_no_tile_server_unless_configured() -> None:
    app = FastAPI()
    install_console(app, ConsoleSettings())
    assert TestClient(app).get("/console/config.json").json()["tile_url"] == ""

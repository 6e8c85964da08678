"""The sandbox apt cache's pre-warm: indexes fetched one at a time through the cache, a stalled cache named.

A local HTTP server plays the cache (a proxy gets absolute URLs in the request line); nothing leaves this machine.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from smcp_api.sandbox import aptcache
from smcp_api.sandbox.model import SandboxError


class _Cache(http.server.BaseHTTPRequestHandler):
    seen: list[str]
    in_flight: list[int]
    stall: threading.Event | None = None
    status = 200

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.in_flight.append(1)
        try:
            self.seen.append(self.path)
            assert len(self.in_flight) == 1, "two index fetches at once"
            if self.stall is not None:
                self.stall.wait(5)  # a cache that never answers (released at the end of the test)
                return
            body = b"-----BEGIN PGP SIGNED MESSAGE-----\n"
            self.send_response(self.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            self.in_flight.pop()


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Cache]]:
    handler = type("Cache", (_Cache,), {"seen": [], "in_flight": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    monkeypatch.setattr(aptcache, "APT_CACHE_PORT", server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler
    if handler.stall is not None:
        handler.stall.set()
    server.shutdown()
    server.server_close()


def test_prewarm_fetches_each_index_once_in_turn_through_the_cache(cache: type[_Cache]) -> None:
    assert aptcache.prewarm() == list(aptcache.INDEXES)
    assert cache.seen == list(aptcache.INDEXES)  # absolute URLs: asked as a proxy, as the hosts ask


def test_prewarm_names_a_stalled_cache_within_its_timeout(cache: type[_Cache]) -> None:
    cache.stall = threading.Event()
    with pytest.raises(SandboxError) as err:
        aptcache.prewarm(timeout=0.5)
    message = str(err.value)
    assert aptcache.INDEXES[0] in message and "within 0.5 s" in message
    assert str(aptcache.conf_dir() / "log") in message
    assert cache.seen == [aptcache.INDEXES[0]]  # stopped at the first stalled index


def test_prewarm_names_an_index_the_cache_cannot_get(cache: type[_Cache]) -> None:
    cache.status = 503
    with pytest.raises(SandboxError, match=r"answered 503 for http://deb\.debian\.org/debian/dists/bookworm/InRelease"):
        aptcache.prewarm()


def test_cache_config_keeps_indexes_fresh_and_gives_up_frozen_downloads() -> None:
    config = aptcache._config()
    assert f"FreshIndexMaxAge: {aptcache.FRESH_INDEX_MAX_AGE}" in config.splitlines()
    assert "ResponseFreezeDetectTime: 30" in config.splitlines()


def test_a_running_cache_with_another_configuration_is_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache an older smcp started keeps its old settings (e.g. FreshIndexMaxAge) until it is restarted."""
    monkeypatch.setattr(aptcache, "conf_dir", lambda: tmp_path)
    monkeypatch.setattr(aptcache, "running_pid", lambda: 4242)
    monkeypatch.setattr(aptcache, "_answers", lambda timeout=0.5: True)
    stopped: list[bool] = []

    def stop() -> None:
        stopped.append(True)
        raise RuntimeError("stopped")  # the start that would follow is not this test's business

    monkeypatch.setattr(aptcache, "stop", stop)
    (tmp_path / "acng.conf").write_text(aptcache._config())
    assert aptcache.ensure() == 4242
    assert not stopped
    (tmp_path / "acng.conf").write_text(aptcache._config().replace("FreshIndexMaxAge: 1800", "FreshIndexMaxAge: 300"))
    with pytest.raises(RuntimeError, match="stopped"):
        aptcache.ensure()
    assert stopped == [True]

"""Real peers for the tests: the RTSP server and the MQTT broker of benchmarks/_common/peers.py (the
benchmarks run them too), started by fixtures that always stop them, and an HTTP server on loopback.

A pytest plugin (tests/conftest.py lists it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
import functools
import http.server
from pathlib import Path
import threading
from typing import Any

import pytest

from benchmarks._common.peers import (
    MOSQUITTO,
    MOSQUITTO_PASSWD,
    SERVER_PYTHON,
    SERVER_SCRIPT,
    START_TIMEOUT_S,
    Mosquitto,
    RtspServer,
    free_tcp_port,
)

__all__ = [
    "MOSQUITTO",
    "MOSQUITTO_PASSWD",
    "SERVER_PYTHON",
    "SERVER_SCRIPT",
    "START_TIMEOUT_S",
    "Mosquitto",
    "QuietHandler",
    "RtspServer",
    "free_tcp_port",
    "http_server",
    "mosquitto",
    "rtsp_server",
]


@pytest.fixture
def rtsp_server() -> Iterator[Callable[..., RtspServer]]:
    """Start RTSP servers: `rtsp_server(codec="aac", user="u", password="p")`; all stopped at teardown."""
    servers: list[RtspServer] = []

    def start(**kwargs: Any) -> RtspServer:
        server = RtspServer(**kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Mosquitto]]:
    """Start brokers: `mosquitto()` or `mosquitto(users={"u": "p"})`; all stopped at teardown."""
    brokers: list[Mosquitto] = []

    def start(**kwargs: Any) -> Mosquitto:
        broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"), **kwargs)
        brokers.append(broker)
        return broker.start()

    yield start
    for broker in brokers:
        broker.stop()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def http_server(directory: Path) -> Iterator[str]:
    """A real HTTP server on loopback serving `directory`; yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="test_http_server")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

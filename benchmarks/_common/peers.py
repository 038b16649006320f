"""Real peers on loopback for the benchmarks and the tests: the GStreamer RTSP server (rtsp_server.py,
beside this module) in a subprocess, and Debian's Mosquitto MQTT broker.

The RTSP server needs Debian's /usr/bin/python3 with the gi bindings (`scripts/setup` installs them, on
the host and in the latest environment's rootfs); SOUND_SENTRY_RTSP_PYTHON overrides the interpreter.
The tests' fixtures that start and always stop them are in tests/peers.py.
"""

from __future__ import annotations

import os
from pathlib import Path
import pwd
import select
import socket
import subprocess
import tempfile
import time
from typing import Any, Self


class PeerError(RuntimeError):
    """A peer did not start (its program is missing, or it failed): what it said is in the message."""


SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SERVER_PYTHON = os.environ.get("SOUND_SENTRY_RTSP_PYTHON", "/usr/bin/python3")
START_TIMEOUT_S = 20.0


class RtspServer:
    """One GstRtspServer process on 127.0.0.1; `restart()` comes back on the same port."""

    def __init__(
        self,
        *,
        codec: str = "pcmu",
        source: str = "tone",
        file: Path | str | None = None,
        rate: int | None = None,
        stall_after_s: float | None = None,
        user: str | None = None,
        password: str | None = None,
        port: int = 0,
        tls: bool = False,
    ) -> None:
        self.codec = codec
        self.user = user
        self.password = password
        self.port = port
        self._args = ["--codec", codec, "--source", source]
        if file is not None:
            self._args += ["--file", str(file)]
        if rate is not None:
            self._args += ["--rate", str(rate)]
        if stall_after_s is not None:
            self._args += ["--stall-after-s", str(stall_after_s)]
        if user is not None:
            self._args += ["--user", user, "--password", password or ""]
        self.scheme = "rtsps" if tls else "rtsp"
        if tls:  # a self-signed certificate, as cameras have (a test-only key)
            self._args += ["--tls-pem", str(Path(__file__).with_name("rtsps_self_signed.pem"))]
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: Any = None

    def url(self, user: str | None = None, password: str | None = None, path: str = "/stream") -> str:
        """The stream's URL, with user-info when given."""
        userinfo = f"{user}:{password}@" if user is not None else ""
        return f"{self.scheme}://{userinfo}127.0.0.1:{self.port}{path}"

    def start(self) -> Self:
        """Start the server and wait until it serves (READY)."""
        if self._proc is not None:
            raise RuntimeError("already running")
        if not Path(SERVER_PYTHON).exists():
            raise PeerError(
                f"{SERVER_PYTHON} not found: the RTSP test server needs Debian's python3 (scripts/setup)"
            )
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [SERVER_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), *self._args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        line = ""
        while not line.startswith("READY") and time.monotonic() < deadline:
            ready, _, _ = select.select([self._proc.stdout], [], [], deadline - time.monotonic())
            if not ready:
                continue
            line = self._proc.stdout.readline()
            if not line:  # exited
                break
        if not line.startswith("READY"):
            self._stderr.seek(0)
            errors = self._stderr.read()[-2000:]
            self.stop()
            raise PeerError(f"the RTSP test server did not start: {errors}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); the port stays reserved for `restart()`."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def restart(self) -> None:
        """Start again on the same port."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


MOSQUITTO = os.environ.get("SOUND_SENTRY_MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


def free_tcp_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Mosquitto:
    """Debian's broker on 127.0.0.1 (`scripts/setup` installs it); `restart()` keeps the port and what it
    persisted (retained messages, persistent sessions and their queued messages)."""

    def __init__(self, folder: Path, *, users: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.port = free_tcp_port()
        self._proc: subprocess.Popen[bytes] | None = None
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"user {pwd.getpwuid(os.getuid()).pw_name}",  # as root it would switch to `mosquitto`
            "persistence true",
            f"persistence_location {folder}/",
            f"log_dest file {folder / 'mosquitto.log'}",
            "log_type all",
        ]
        if users:
            passwords = folder / "passwords"
            passwords.write_text("")
            for user, password in users.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", str(passwords), user, password],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines += ["allow_anonymous true"]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def log(self) -> str:
        """What the broker logged so far."""
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> Self:
        """Start the broker and wait until it accepts connections."""
        if not Path(MOSQUITTO).exists():
            raise PeerError(f"{MOSQUITTO} not found: the MQTT tests need Debian's mosquitto (scripts/setup)")
        self._proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self._proc.poll() is None:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        errors = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
        self.stop()
        raise PeerError(f"mosquitto did not start: {errors}{self.log[-2000:]}")

    def stop(self) -> None:
        """Stop the broker (SIGTERM: it saves what it persists)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

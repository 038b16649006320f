"""The MQTT service at scale: N sources through one `sound-sentry serve` process and a real broker.

    scripts/run python -m benchmarks.service [--sources 1 4 8 16] [--seconds 40]

Each source plays the same 60 s of real test-split audio (a local file at real-time pace, looped), so
the model classifies every window, as for a camera in a lived-in room. Per N, after a 5 s warm-up and
over --seconds:
- CPU: the service process's CPU time (user + system, all threads) / wall time, per source, in % of one
  core; "sources per core" = 100 / that;
- memory: the process's resident set at the end;
- delay: from the moment the paced source hands over the chunk that completes a window to the moment a
  subscriber (another client of the same broker) receives the level message that the chunk produced;
  p50 and p95 over all level messages (one per source every 2 s).
The broker is Debian's mosquitto on a free loopback port (`scripts/setup` installs it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import resource
import tempfile
import threading
import time

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks._common import load_average, model_note, percentile, rss_mb
from benchmarks.decode import real_audio
from custom_components.sound_sentry.engine.model import model_path
from custom_components.sound_sentry.engine.service.config import load_config
from custom_components.sound_sentry.engine.service.service import SoundSentryService
from custom_components.sound_sentry.engine.sources import PacedSource
from tests.audio import write_wav
from tests.peers import Mosquitto

WARM_UP_S = 5.0


class ReleaseClock:
    """When each source thread's paced source last handed over a chunk (wraps the public `read`)."""

    def __init__(self) -> None:
        self.released: dict[int, float] = {}
        original = PacedSource.read

        def read(source: PacedSource) -> object:
            chunk = original(source)
            self.released[threading.get_ident()] = time.monotonic()
            return chunk

        PacedSource.read = read  # type: ignore[method-assign,assignment]


def run(
    count: int, seconds: float, *, wav: Path, broker: Mosquitto, clock: ReleaseClock, folder: Path
) -> str:
    sources = "".join(f"  - {{name: Source {i}, url: '{wav}'}}\n" for i in range(count))
    config_path = folder / f"service-{count}.yaml"
    config_path.write_text(f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\nsources:\n{sources}")
    pending: dict[tuple[str, str], float] = {}
    delays: list[float] = []
    lock = threading.Lock()
    measuring = threading.Event()

    def on_publish(topic: str, payload: str) -> None:
        if topic.endswith("/level") and measuring.is_set():
            with lock:
                pending[(topic, payload)] = clock.released[threading.get_ident()]

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        received = time.monotonic()
        with lock:
            released = pending.pop((message.topic, message.payload.decode()), None)
        if released is not None:
            delays.append(received - released)

    subscriber = paho.Client(CallbackAPIVersion.VERSION2)
    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.subscribe("sound_sentry/+/level", qos=1)
    subscriber.loop_start()
    service = SoundSentryService(load_config(config_path), on_publish=on_publish)
    service.start()
    try:
        time.sleep(WARM_UP_S)
        usage, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        measuring.set()
        time.sleep(seconds)
        measuring.clear()
        after, elapsed = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall
        memory = rss_mb()
    finally:
        service.stop()
        subscriber.disconnect()
        subscriber.loop_stop()
    cpu = (after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime) / elapsed * 100
    per_source = cpu / count
    return (
        f"| {count} | {per_source:.1f}% | {cpu:.0f}% | {100 / per_source:.0f} | {memory:.0f} MB | "
        f"{1000 * percentile(delays, 50):.0f} ms | {1000 * percentile(delays, 95):.0f} ms | {len(delays)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sources", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    clock = ReleaseClock()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        wav = write_wav(folder / "room.wav", real_audio(60.0).astype(np.float32) / 32768)
        (folder / "broker").mkdir()
        broker = Mosquitto(folder / "broker").start()
        try:
            print(f"model: {model_note(model_path())}; {os.cpu_count()} CPUs; load average {load_average()}")
            print(
                "| sources | CPU per source (of one core) | CPU in all | sources per core | memory (RSS) "
                "| delay p50 | delay p95 | level messages |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for count in args.sources:
                print(
                    run(count, args.seconds, wav=wav, broker=broker, clock=clock, folder=folder), flush=True
                )
            print(f"load average after: {load_average()}")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()

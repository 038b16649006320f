"""The MQTT service at scale: N sources through one `sound-sentry serve` process and a real broker.

    scripts/run python -m benchmarks.service [--model accurate] [--sources 1 4 8 16] [--seconds 40] [--runs 1]

Each source plays the same 60 s of real test-split audio (a local file at real-time pace, looped) with
--model (a shipped model by name: `accurate`, `compact`), so the model classifies every window, as for a
camera in a lived-in room. Per N and run, after a 5 s warm-up and over --seconds:
- CPU: this process's CPU time (user + system, all threads: the service and one subscriber) / wall
  time, per source, in % of one core; "sources per core" = 100 / that;
- memory: the process's resident set at the end;
- delay: from the moment a source's listener gets the chunk that completes a window (its observer's
  `on_audio`) to the moment a subscriber (another client of the same broker) receives the level message
  that the chunk produced; p50 and p95 over all level messages (one per source every 2 s).
With --runs R, each N runs R times: CPU and memory are the median of the runs, the delays pooled.
The broker is Debian's mosquitto on a free loopback port (`scripts/setup` installs it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import resource
import statistics
import tempfile
import threading
import time

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks._common import load_average, model_note, percentile, rss_mb
from benchmarks._common.audio import write_wav
from benchmarks._common.peers import Mosquitto
from benchmarks.decode import real_audio
from custom_components.sound_sentry.engine.listener import ListenerObserver
from custom_components.sound_sentry.engine.model import DEFAULT_MODEL, SHIPPED_MODELS, model_path
from custom_components.sound_sentry.engine.service.config import load_config
from custom_components.sound_sentry.engine.service.service import SoundSentryService
from custom_components.sound_sentry.engine.sources import AudioChunk

WARM_UP_S = 5.0


def run(
    count: int, seconds: float, *, model: str, wav: Path, broker: Mosquitto, folder: Path
) -> tuple[float, float, list[float]]:
    """One service with `count` sources: (CPU in % of one core, RSS in MB, delays in s)."""
    sources = "".join(f"  - {{name: Source {i}, url: '{wav}', model: {model}}}\n" for i in range(count))
    config_path = folder / f"service-{count}.yaml"
    config_path.write_text(f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\nsources:\n{sources}")
    released: dict[str, float] = {}
    """Source object id -> when its listener last got a chunk (written and read in its source thread)."""
    chunks: dict[tuple[str, str], float] = {}
    """(topic, payload) of a level message -> its chunk's time, when published before it arrived."""
    arrivals: dict[tuple[str, str], float] = {}
    """(topic, payload) -> when it arrived, when it arrived before `on_publish` ran (it runs after)."""
    delays: list[float] = []
    lock = threading.Lock()
    measuring = threading.Event()
    config = load_config(config_path)

    def on_publish(topic: str, payload: str) -> None:
        if topic.endswith("/level") and measuring.is_set():  # <topic_prefix>/<source>/level
            chunk_at = released[topic.split("/")[-2]]
            with lock:
                if (received := arrivals.pop((topic, payload), None)) is not None:
                    delays.append(received - chunk_at)
                else:
                    chunks[(topic, payload)] = chunk_at

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        received, key = time.monotonic(), (message.topic, message.payload.decode())
        with lock:
            if (chunk_at := chunks.pop(key, None)) is not None:
                delays.append(received - chunk_at)
            elif measuring.is_set():
                arrivals[key] = received

    def stamp(source: str) -> ListenerObserver:
        def on_audio(chunk: AudioChunk) -> None:
            released[source] = time.monotonic()

        return ListenerObserver(on_audio=on_audio)

    subscriber = paho.Client(CallbackAPIVersion.VERSION2)
    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.subscribe(f"{config.mqtt.topic_prefix}/+/level", qos=1)
    subscriber.loop_start()
    service = SoundSentryService(config, on_publish=on_publish)
    service.start()
    for source, listener in service.listeners.items():
        listener.add_observer(stamp(source))
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
    return cpu, memory, delays


def row(model: str, count: int, runs: list[tuple[float, float, list[float]]]) -> str:
    """A table row: CPU and memory the median of the runs, the delays of all runs."""
    cpu = statistics.median(cpu for cpu, _, _ in runs)
    memory = statistics.median(memory for _, memory, _ in runs)
    delays = [delay for _, _, run_delays in runs for delay in run_delays]
    per_source = cpu / count
    return (
        f"| {model} | {count} | {per_source:.1f}% | {cpu:.0f}% | {100 / per_source:.0f} | {memory:.0f} MB | "
        f"{1000 * percentile(delays, 50):.0f} ms | {1000 * percentile(delays, 95):.0f} ms | {len(delays)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sources", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--model", choices=list(SHIPPED_MODELS), default=DEFAULT_MODEL)
    parser.add_argument("--runs", type=int, default=1, help="runs per N (CPU and memory: median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        wav = write_wav(folder / "room.wav", real_audio(60.0).astype(np.float32) / 32768)
        (folder / "broker").mkdir()
        broker = Mosquitto(folder / "broker").start()
        try:
            print(
                f"model: {model_note(model_path(args.model))}; {args.seconds:.0f} s x {args.runs} runs per N; "
                f"{os.cpu_count()} CPUs; load average {load_average()}"
            )
            print(
                "| model | sources | CPU per source (of one core) | CPU in all | sources per core | memory (RSS) "
                "| delay p50 | delay p95 | level messages |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            for count in args.sources:
                runs = [
                    run(count, args.seconds, model=args.model, wav=wav, broker=broker, folder=folder)
                    for _ in range(args.runs)
                ]
                print(row(args.model, count, runs), flush=True)
            print(f"load average after: {load_average()}")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()

"""Outage recovery: kill and restart the RTSP server N times against one engine SourceRunner.

    scripts/run python -m benchmarks.outage [--cycles 100] [--down-s 0] [--max-backoff 60]

Per cycle: stop the GStreamer RTSP server (SIGTERM: the TCP session closes), wait until the runner
reports it disconnected, keep the server down --down-s seconds more, start it again on the same port
(timed from the moment it prints READY, i.e. accepts connections), and time until the runner's next audio
chunk. Thread and file-descriptor counts (/proc/self) are taken once audio flows before the first cycle,
after the last recovery, and after the runner stopped.

The runner's Backoff (capped exponential with jitter, reset by a connection that delivered audio)
decides recovery: the first retry after a loss comes after initial_s shortened by up to jitter; each
failed attempt multiplies the delay by factor up to max_s. A short outage (the default --down-s 0, the
server back in about a second) is caught by the first or second retry; a long one climbs the ladder,
and the server's return then waits for the current delay, up to max_s (try --down-s 20).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
import statistics
import threading
import time

from benchmarks._common import load_average, open_fds, percentile, thread_count
from benchmarks._common.peers import RtspServer
from custom_components.sound_sentry.engine.sources import AudioChunk, RtspSource, SourceError, SourceRunner
from custom_components.sound_sentry.engine.sources.runner import Backoff

WAIT_S = 120.0


class Probe:
    """Counts chunks and status transitions from the runner's thread; waiters block on conditions."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.chunks = 0
        self.last_chunk_at = 0.0
        self.connected = False
        self.disconnected_at = 0.0
        self.attempt_errors = 0

    def on_audio(self, _chunk: AudioChunk) -> None:
        with self.cond:
            self.chunks += 1
            self.last_chunk_at = time.monotonic()
            self.cond.notify_all()

    def on_status(self, connected: bool, error: SourceError | None) -> None:
        with self.cond:
            self.connected = connected
            if not connected:
                self.disconnected_at = time.monotonic()
            self.cond.notify_all()

    def wait(self, predicate: object, what: str) -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, WAIT_S):  # type: ignore[arg-type]
                raise SystemExit(f"timed out waiting for {what}")


def summary(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {len(values)} | {statistics.median(values):.2f} | {percentile(values, 95):.2f} | "
        f"{max(values):.2f} | {min(values):.2f} |"
    )


def main() -> None:
    """Run the cycles and print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--down-s", type=float, default=0.0, help="extra seconds down after the disconnect")
    parser.add_argument(
        "--max-backoff", type=float, default=None, help="Backoff max_s (default: the runner's)"
    )
    args = parser.parse_args()
    backoff = Backoff() if args.max_backoff is None else Backoff(max_s=args.max_backoff)
    settings = {k: v for k, v in asdict(backoff).items() if not k.startswith("_") and k != "rng"}

    load_before = load_average()
    server = RtspServer(codec="pcmu", source="tone").start()
    probe = Probe()
    runner = SourceRunner(
        "outage",
        lambda: RtspSource(server.url(), open_timeout_s=10.0, read_timeout_s=5.0),
        on_audio=probe.on_audio,
        on_status=probe.on_status,
        backoff=backoff,
    )
    runner.start()
    recoveries: list[float] = []
    detections: list[float] = []
    downtimes: list[float] = []
    try:
        probe.wait(lambda: probe.chunks > 50, "first audio")
        fds_before, threads_before = open_fds(), thread_count()
        for cycle in range(args.cycles):
            stopped_at = time.monotonic()
            server.stop()
            probe.wait(lambda: not probe.connected, f"the disconnect of cycle {cycle}")
            detections.append(probe.disconnected_at - stopped_at)
            time.sleep(args.down_s)
            server.start()
            back_at = time.monotonic()
            chunks = probe.chunks
            probe.wait(lambda c=chunks: probe.chunks > c, f"audio after restart {cycle}")  # type: ignore[misc]
            recoveries.append(probe.last_chunk_at - back_at)
            downtimes.append(back_at - stopped_at)
            if (cycle + 1) % 10 == 0:
                print(
                    f"cycle {cycle + 1}: recovery median so far {statistics.median(recoveries):.2f} s",
                    flush=True,
                )
        # Let the last connection settle (PyAV's probing is done) before counting.
        probe.wait(lambda c=probe.chunks: probe.chunks > c + 50, "steady audio")  # type: ignore[misc]
        fds_after, threads_after = open_fds(), thread_count()
    finally:
        runner.stop(15)
        server.stop()
    fds_stopped, threads_stopped = open_fds(), thread_count()

    print()
    print(
        f"Engine SourceRunner + RtspSource (PCMU over RTSP/TCP, GStreamer RTSP server on loopback); "
        f"{args.cycles} cycles, server kept down {args.down_s:g} s after the disconnect was reported"
    )
    print(f"Backoff: {settings}" + (" (the runner's default)" if args.max_backoff is None else ""))
    print(f"Load average (1, 5, 15 min): before {load_before}; after {load_average()} (2 CPUs shared)")
    print()
    print("| seconds | n | p50 | p95 | max | min |")
    print("|---|---:|---:|---:|---:|---:|")
    print(summary("**recovery**: server READY -> next audio chunk", recoveries))
    print(summary("disconnect reported after the server stopped", detections))
    print(summary("server down (stop -> READY again)", downtimes))
    print()
    worst = max(recoveries)
    print(f"Goal recovery <= 10 s: {'met' if worst <= 10 else 'NOT met'} (max {worst:.2f} s)")
    print()
    print("| | file descriptors | Python threads | OS threads |")
    print("|---|---:|---:|---:|")
    print(f"| audio flowing, before cycle 1 | {fds_before} | {threads_before[0]} | {threads_before[1]} |")
    print(
        f"| audio flowing, after cycle {args.cycles} | {fds_after} | {threads_after[0]} | {threads_after[1]} |"
    )
    print(f"| runner stopped | {fds_stopped} | {threads_stopped[0]} | {threads_stopped[1]} |")
    leak = fds_after - fds_before, threads_after[1] - threads_before[1]
    print()
    print(f"Leak after {args.cycles} cycles: {leak[0]:+d} fds, {leak[1]:+d} OS threads")


if __name__ == "__main__":
    main()

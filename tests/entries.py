"""Sound Sentry config entries as the flows store them: benchmarks/_common/entries.py's (the benchmarks that
run Home Assistant use them too), under the tests' name."""

from __future__ import annotations

from benchmarks._common.entries import RELEASES, TEST_MODEL, flow_defaults, options, rtsp_entry, udp_entry

__all__ = ["RELEASES", "TEST_MODEL", "flow_defaults", "options", "rtsp_entry", "udp_entry"]

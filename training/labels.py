"""The classes Sound Sentry's models are trained on, in output order: what training writes as a sidecar's labels.

The engine and Home Assistant read a model's labels from its sidecar (`ModelInfo.labels`), never from here.
"""

from __future__ import annotations

LABELS = ("background", "babycry", "glassbreak", "gunshot")
BACKGROUND = LABELS[0]
"""The class of everything else: it gets no threshold and never starts an event."""
EVENT_LABELS = LABELS[1:]
"""The sounds a model detects (those with a threshold)."""

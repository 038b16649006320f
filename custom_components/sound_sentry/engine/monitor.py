"""One source watched for every front end: what its entities show, as typed updates from its source thread.

Home Assistant's runtime and the MQTT service are adapters over a `SourceMonitor`: it owns the
`Listener` (source thread, pipeline, clip recorder), which sounds are going on, the peaks of each state
interval, the level the level sensor shows, and the outage (logged once when audio is lost, once when it
is back). The adapters only turn its updates into entities, topics and repairs.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
import logging
import threading
from typing import TYPE_CHECKING, TypeAlias

from .entities import EntitySpec, source_entities
from .listener import Listener

if TYPE_CHECKING:
    from .alarm import AlarmSettings
    from .clips import Clip
    from .detector import DetectorSettings
    from .events import DetectionEvent
    from .model import LoadedModel
    from .pipeline import PipelineOutput, WindowResult
    from .sources import AudioSource, Backoff, SourceError
    from .taught import TaughtSound

_LOGGER = logging.getLogger(__name__)

STATE_INTERVAL_S = 2.0
"""The level and probabilities are reported as the peaks of each interval this long (of stream time),
not every window."""
LEVEL_STEP_DB = 3.0
"""The level shown changes at once only when the peak differs this much from the level shown ..."""
LEVEL_REFRESH_S = 60.0
"""... and a smaller change is shown at most this often: a steady room writes one recorder row a minute,
not one per interval (~43,000 a day)."""
HISTORY_WINDOWS = 40
"""Recent windows kept for diagnostics (40 s at the shipped models' hop of 1 s)."""


@dataclass(frozen=True, slots=True)
class IntervalPeaks:
    """The loudest level and the highest probabilities over one state interval."""

    end_s: float
    """Stream time at which the interval closed (its last window's end; 0 = the connection's start)."""
    dbfs: float
    probabilities: Mapping[str, float]
    """Per label of the pipeline (the model's, background included, then the taught sounds')."""


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """What the source's entities show.

    Sent after sounds start or end, at the end of each state interval, and when a lost connection clears it.
    """

    active: Mapping[str, bool]
    """Every detected sound and alarm (`SourceMonitor.labels`): whether it is going on."""
    level_dbfs: float | None
    """The sound level to show (0.1 dB): the interval's peak when it moved LEVEL_STEP_DB or more from the
    level shown, else at most once per LEVEL_REFRESH_S; None until the first interval since connecting."""
    peaks: IntervalPeaks | None
    """The last interval's peaks (the probability sensors show them as they are); None as `level_dbfs`."""


@dataclass(frozen=True, slots=True)
class DetectionUpdate:
    """A sound or an alarm started or ended; a start carries the key of its clip (with clips on)."""

    event: DetectionEvent


@dataclass(frozen=True, slots=True)
class AvailabilityUpdate:
    """The source's audio was lost, came back, or failed for another reason."""

    connected: bool
    error: SourceError | None
    """Why the audio was lost or never came (None while connected, and before the first attempt)."""
    outage_since: datetime | None
    """When the audio was lost, or when the monitor started for a source that has not connected yet;
    None while connected."""


MonitorUpdate: TypeAlias = StateUpdate | DetectionUpdate | AvailabilityUpdate


class SourceMonitor:
    """Listen to one source and report what its entities show, to one callback, from the source thread.

    Per chunk of audio: a `DetectionUpdate` for each sound or alarm that starts or ends, then one
    `StateUpdate` if anything the entities show changed. On every change of the connection: an
    `AvailabilityUpdate`, then (when audio was lost) a `StateUpdate` with nothing going on and no level.
    `state` and `availability` are the latest of each, readable from any thread. Nothing runs before
    `start()`; `on_update` is never called after `stop()` returned.
    """

    def __init__(
        self,
        name: str,
        source_factory: Callable[[], AudioSource],
        model: LoadedModel,
        *,
        title: str,
        detector: DetectorSettings,
        alarms: AlarmSettings | None,
        on_update: Callable[[MonitorUpdate], None],
        clips: tuple[Callable[[DetectionEvent], str], Callable[[Clip], None]] | None = None,
        backoff: Backoff | None = None,
        taught: Mapping[str, TaughtSound] | None = None,
    ) -> None:
        """`name` names the source thread (an id); `title` names the source in logs.

        `clips` = (key_for, on_clip) cuts the audio of each event (`Listener.for_model`); `backoff` paces
        reconnects (the `SourceRunner`'s default if None). `taught` sounds (label -> head) are sounds
        like the model's: `detector` gives each label its threshold (`detection_settings.with_taught`),
        and each has its binary sensor, event type and probability sensor.
        """
        self.model = model
        self.title = title
        self.detector = detector
        self.alarms = alarms
        self.labels: tuple[str, ...] = (*detector.thresholds, *(alarms.labels if alarms is not None else ()))
        """Every sound and alarm with a binary sensor and an event type: the model's enabled ones, the
        taught ones, then alarms."""
        self.taught_names: dict[str, str] = {label: sound.name for label, sound in (taught or {}).items()}
        """The user's name of each taught sound, by label."""
        self.entities: tuple[EntitySpec, ...] = source_entities(model.info, self.labels, self.taught_names)
        """The source's entities, as every front end shows them (`entities.py`)."""
        self._on_update = on_update
        self._source_factory = source_factory
        self._source: AudioSource | None = None
        self._past_counters: Counter[str] = Counter()
        self._cleared = StateUpdate(active=dict.fromkeys(self.labels, False), level_dbfs=None, peaks=None)
        self.state = self._cleared
        self.availability = AvailabilityUpdate(connected=False, error=None, outage_since=None)
        self._outage_logged = False
        self._interval: list[WindowResult] = []
        self._level_shown_s = 0.0
        self._history: deque[WindowResult] = deque(maxlen=HISTORY_WINDOWS)
        self._history_lock = threading.Lock()
        self.windows_classified = 0
        """Windows classified since `start()`, over every connection."""
        self.listener = Listener.for_model(
            name,
            self._build_source,
            model,
            detector=detector,
            alarms=alarms,
            on_output=self._output,
            on_status=self._status,
            clips=clips,
            backoff=backoff,
            taught=taught,
        )
        """The source thread and its pipeline; tools that watch the live audio (benchmarks) attach to it
        with `Listener.add_observer`."""

    def start(self) -> None:
        """Start the source thread; it connects, and reconnects, by itself."""
        self.availability = AvailabilityUpdate(connected=False, error=None, outage_since=datetime.now(UTC))
        self.listener.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the source thread and join it (blocking); unfinished clips are handed over."""
        self.listener.stop(timeout)

    @property
    def recent_windows(self) -> list[WindowResult]:
        """The last HISTORY_WINDOWS windows, oldest first (for diagnostics; any thread)."""
        with self._history_lock:
            return list(self._history)

    @property
    def counters(self) -> dict[str, int]:
        """Datagram counters of a UDP source since `start()`, over every connection (empty for others).

        received, dropped_foreign, dropped_malformed (`UdpCounters`).
        """
        total = Counter(self._past_counters)
        if (current := getattr(self._source, "counters", None)) is not None:
            total.update(asdict(current))
        return dict(total)

    # -- source thread ----------------------------------------------------------------------------

    def _build_source(self) -> AudioSource:
        """A fresh source for each connection; keeps the counters of the ones before."""
        if (counters := getattr(self._source, "counters", None)) is not None:
            self._past_counters.update(asdict(counters))
        self._source = self._source_factory()
        return self._source

    def _output(self, output: PipelineOutput) -> None:
        self.windows_classified += len(output.windows)
        with self._history_lock:
            self._history.extend(output.windows)
        state = self.state
        if output.events:
            active = dict(state.active)
            for event in output.events:
                active[event.label] = event.active
                _LOGGER.debug(
                    "%s: %s %s (%s)", self.title, event.label, "started" if event.active else "ended", event
                )
            state = StateUpdate(active=active, level_dbfs=state.level_dbfs, peaks=state.peaks)
        self._interval.extend(output.windows)
        if self._interval and (
            state.peaks is None or self._interval[-1].end_s - state.peaks.end_s >= STATE_INTERVAL_S
        ):
            state = self._close_interval(state)
        if state is self.state:
            return
        self.state = state
        for event in output.events:
            self._on_update(DetectionUpdate(event))
        self._on_update(state)

    def _close_interval(self, state: StateUpdate) -> StateUpdate:
        """The peaks of the windows since the last interval, and the level to show after them."""
        windows, self._interval = self._interval, []
        peaks = IntervalPeaks(
            end_s=windows[-1].end_s,
            dbfs=max(window.dbfs for window in windows),
            probabilities={
                label: max(window.probabilities[label] for window in windows)
                for label in self.listener.pipeline.labels
            },
        )
        level = round(peaks.dbfs, 1)
        shown = state.level_dbfs
        if (
            shown is None
            or abs(peaks.dbfs - shown) >= LEVEL_STEP_DB
            or (level != shown and peaks.end_s - self._level_shown_s >= LEVEL_REFRESH_S)
        ):
            shown, self._level_shown_s = level, peaks.end_s
        return StateUpdate(active=state.active, level_dbfs=shown, peaks=peaks)

    def _status(self, connected: bool, error: SourceError | None) -> None:
        was = self.availability
        if connected == was.connected and error is None:
            return
        # Logged once when audio is lost (or never came) and once when it is back, not per retry.
        if connected:
            if self._outage_logged:
                _LOGGER.info("%s: audio is back", self.title)
                self._outage_logged = False
        elif not self._outage_logged:
            _LOGGER.info("%s: no audio (%s); retrying in the background", self.title, error)
            self._outage_logged = True
        since = None if connected else (was.outage_since or datetime.now(UTC))
        self.availability = AvailabilityUpdate(connected=connected, error=error, outage_since=since)
        self._interval = []
        cleared = not connected and self.state != self._cleared
        if cleared:
            self.state = self._cleared
        self._on_update(self.availability)
        if cleared:
            self._on_update(self.state)

"""Per-entry runner: the Home Assistant side of a source's `SourceMonitor` (engine/monitor.py).

The monitor decides what the entities show, in the source's thread; this hands its updates to the event
loop and keeps only what is Home Assistant's: repair issues, reauth, the clip store and its bus event,
and the entities' listeners.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later
import numpy as np
import numpy.typing as npt

from . import const
from .clip_store import ClipStore
from .const import DOMAIN, EVENT_CLIP_SAVED, LOGGER
from .engine.alarm import AlarmSettings
from .engine.clips import Clip
from .engine.detector import DetectorSettings
from .engine.events import DetectionEvent
from .engine.listener import Listener, ListenerObserver
from .engine.model import LoadedModel
from .engine.monitor import (
    AvailabilityUpdate,
    DetectionUpdate,
    MonitorUpdate,
    SourceMonitor,
    StateUpdate,
)
from .engine.sources import AudioChunk, AudioSource, SourceError
from .engine.taught import TaughtSound

RECORD_GRACE_S = 10.0
"""`async_record` gives up when the audio asked for has not arrived within its length and this."""


class RecordError(HomeAssistantError):
    """Recording from a source failed: `source_unavailable` (it is down) or `no_audio` (nothing came)."""

    def __init__(self, reason: str, name: str, seconds: float) -> None:
        super().__init__(
            translation_domain=DOMAIN,
            translation_key=reason,
            translation_placeholders={"name": name, "seconds": f"{seconds:g}"},
        )
        self.reason = reason


class SoundSentryRuntime:
    """Listens to one source (its `SourceMonitor`) and shows the monitor's updates on the event loop."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        entry_id: str,
        title: str,
        model: LoadedModel,
        source_factory: Callable[[], AudioSource],
        detector: DetectorSettings,
        alarms: AlarmSettings | None,
        on_invalid_auth: Callable[[], None] | None,
        clips: ClipStore | None = None,
        taught: Mapping[str, TaughtSound] | None = None,
    ) -> None:
        """Listen to one source; nothing runs before `start()`.

        `on_invalid_auth` starts a reauth flow. It is None when the credentials are not Sound Sentry's to
        change (a camera entity's belong to its own integration): then a repair issue says where to fix them.
        With `clips`, the audio of every event is kept there. `taught` sounds (slug -> head) are heard
        like the model's, at the thresholds `detector` gives them (`SourceMonitor`).
        """
        self.hass = hass
        self.entry_id = entry_id
        self.title = title
        self.model = model
        self.detector_settings = detector
        self.alarm_settings = alarms
        self.clips = clips
        self.issue_id = f"source_down_{entry_id}"
        """The repair issue of this source, if it has been down too long."""
        self.auth_issue_id = f"camera_invalid_auth_{entry_id}"
        """The repair issue of a camera entity whose stream refuses the credentials its camera gave."""
        self.monitor = SourceMonitor(
            entry_id,
            source_factory,
            model,
            title=title,
            detector=detector,
            alarms=alarms,
            on_update=self._on_update,
            clips=None if clips is None else (self._clip_name, self._on_clip),
            taught=taught,
        )
        self.state: StateUpdate = self.monitor.state
        """What the entities show, as of the last update the loop has seen."""
        self.availability: AvailabilityUpdate = self.monitor.availability
        self._running = False
        self._state_listeners: list[CALLBACK_TYPE] = []
        self._event_listeners: list[Callable[[DetectionEvent], None]] = []
        self._cancel_repair: CALLBACK_TYPE | None = None
        self._on_invalid_auth = on_invalid_auth
        self._repair_raised = False
        self._saving: set[asyncio.Task[None]] = set()

    # -- lifecycle (event loop) -------------------------------------------------------------------

    def start(self) -> None:
        """Start the source thread; it connects, and reconnects, by itself."""
        self.monitor.start()
        self._running = True
        self.availability = self.monitor.availability
        self._schedule_repair()

    async def async_stop(self) -> None:
        """Stop and join the source thread (off the loop: joining blocks)."""
        self._cancel_repair_timer()
        if self._running:
            self._running = False
            await self.hass.async_add_executor_job(self.monitor.stop)
        if self._saving:  # the clips that stopping handed over, and any still being written
            await asyncio.gather(*self._saving)
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
        ir.async_delete_issue(self.hass, DOMAIN, self.auth_issue_id)

    # -- what tools and diagnostics read (event loop) ---------------------------------------------

    @property
    def listener(self) -> Listener | None:
        """The running listener, None before `start()` and once stopping.

        Tools that watch the live audio (benchmarks) attach to it with `Listener.add_observer`.
        """
        return self.monitor.listener if self._running else None

    @property
    def connected(self) -> bool:
        """Whether audio flows."""
        return self.availability.connected

    @property
    def last_error(self) -> SourceError | None:
        """Why audio was lost or never came (None while it flows)."""
        return self.availability.error

    @property
    def windows_classified(self) -> int:
        """Windows classified since `start()`."""
        return self.monitor.windows_classified

    @property
    def counters(self) -> dict[str, int]:
        """Datagram counters of a UDP source since start (`SourceMonitor.counters`)."""
        return self.monitor.counters

    @callback
    def clip_id(self, event: DetectionEvent) -> str | None:
        """The media-source id of an event's clip (None without clips, and for an event's end)."""
        return None if event.clip_key is None or self.clips is None else self.clips.media_id(event.clip_key)

    async def async_record(self, seconds: float) -> npt.NDArray[np.float32]:
        """The next `seconds` of the running source's audio, 8 kHz mono float32, as the listener hears it.

        Taken from the listener's own audio (no second connection to the camera). Raises RecordError
        `source_unavailable` when the source is down (or goes down meanwhile), `no_audio` when the audio
        has not arrived within `seconds` + RECORD_GRACE_S.
        """
        listener = self.listener
        if listener is None or not self.connected:
            raise RecordError("source_unavailable", self.title, seconds)
        wanted = round(seconds * self.model.info.sample_rate_hz)
        loop = self.hass.loop
        done: asyncio.Future[str | None] = loop.create_future()
        chunks: list[AudioChunk] = []
        received = 0

        def finish(result: str | None) -> None:  # event loop
            if not done.done():
                done.set_result(result)

        def on_audio(chunk: AudioChunk) -> None:  # source thread
            nonlocal received
            if received < wanted:
                chunks.append(chunk.copy())
                received += chunk.size
                if received >= wanted:
                    loop.call_soon_threadsafe(finish, None)

        def on_status(connected: bool, _error: SourceError | None) -> None:  # source thread
            if not connected:
                loop.call_soon_threadsafe(finish, "source_unavailable")

        remove = listener.add_observer(ListenerObserver(on_audio=on_audio, on_status=on_status))
        try:
            async with asyncio.timeout(seconds + RECORD_GRACE_S):
                failure = await done
        except TimeoutError:
            failure = "no_audio"
        finally:
            remove()
        if failure is not None:
            raise RecordError(failure, self.title, seconds)
        pcm = np.concatenate(chunks)[:wanted]
        return pcm.astype(np.float32) / 32768.0

    # -- listeners (event loop) -------------------------------------------------------------------

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` whenever state changes; returns the function that removes it."""
        self._state_listeners.append(listener)
        return lambda: self._state_listeners.remove(listener)

    @callback
    def async_add_event_listener(self, listener: Callable[[DetectionEvent], None]) -> CALLBACK_TYPE:
        """Call `listener` with every event that starts or ends."""
        self._event_listeners.append(listener)
        return lambda: self._event_listeners.remove(listener)

    # -- source thread ----------------------------------------------------------------------------

    def _on_update(self, update: MonitorUpdate) -> None:
        self.hass.loop.call_soon_threadsafe(self._async_update, update)

    def _clip_name(self, event: DetectionEvent) -> str:
        """Name the clip of an event that starts; the event then carries the name as its `clip_key`."""
        assert self.clips is not None
        return self.clips.new_name(event)

    def _on_clip(self, clip: Clip) -> None:
        self.hass.loop.call_soon_threadsafe(self._async_save_clip, clip)

    # -- event loop -------------------------------------------------------------------------------

    @callback
    def _async_update(self, update: MonitorUpdate) -> None:
        match update:
            case StateUpdate():
                self.state = update
                self._notify()
            case DetectionUpdate(event=event):
                for listener in list(self._event_listeners):
                    listener(event)
            case AvailabilityUpdate():
                self._async_availability_changed(update)

    @callback
    def _async_availability_changed(self, update: AvailabilityUpdate) -> None:
        was_connected = self.connected
        self.availability = update
        error = update.error
        if error is not None and error.reason == "invalid_auth":
            # The runner now waits an hour before it tries these credentials again.
            if self._on_invalid_auth is not None:
                self._on_invalid_auth()  # HA starts one reauth flow per entry, however often this is called
            else:
                ir.async_create_issue(
                    self.hass,
                    DOMAIN,
                    self.auth_issue_id,
                    is_fixable=False,
                    severity=ir.IssueSeverity.ERROR,
                    translation_key="camera_invalid_auth",
                    translation_placeholders={"name": self.title},
                )
        if update.connected:
            self._cancel_repair_timer()
            self._repair_raised = False
            ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
            ir.async_delete_issue(self.hass, DOMAIN, self.auth_issue_id)
        elif was_connected:
            self._schedule_repair()
        elif self._repair_raised:
            self._async_raise_repair(None)  # the reason changed: say so in the issue
        self._notify()

    @callback
    def _async_save_clip(self, clip: Clip) -> None:
        task = self.hass.async_create_background_task(self._async_store(clip), f"{DOMAIN} clip {clip.key}")
        self._saving.add(task)
        task.add_done_callback(self._saving.discard)

    async def _async_store(self, clip: Clip) -> None:
        assert self.clips is not None
        try:
            saved = await self.clips.async_save(clip)
        except Exception:  # noqa: BLE001 - a bug here must not stop the source or its unloading
            LOGGER.exception("%s: unexpected error saving a clip", self.title)
            return
        if saved:
            data: dict[str, str | float] = {
                "entry_id": self.entry_id,
                "clip": self.clips.media_id(clip.key),
                "url": self.clips.url(clip.key),
                "event_type": clip.label,
                "duration_s": round(clip.duration_s, 2),
            }
            if clip.peak_probability is not None:  # an alarm pattern has none
                data["peak"] = round(clip.peak_probability, 3)
            self.hass.bus.async_fire(EVENT_CLIP_SAVED, data)

    def _notify(self) -> None:
        for listener in list(self._state_listeners):
            listener()

    def _schedule_repair(self) -> None:
        # Not once stopping: the source thread's last status change can reach the loop after async_stop
        # cancelled the timer (it is queued while the thread is joined), and must not start a new one.
        if self._cancel_repair is None and self._running:
            self._cancel_repair = async_call_later(self.hass, const.REPAIR_AFTER_S, self._async_raise_repair)

    def _cancel_repair_timer(self) -> None:
        if self._cancel_repair is not None:
            self._cancel_repair()
            self._cancel_repair = None

    @callback
    def _async_raise_repair(self, _now: Any) -> None:
        self._cancel_repair = None
        if self.connected:
            return
        self._repair_raised = True
        reason = self.last_error.reason if self.last_error is not None else "cannot_connect"
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self.issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="no_audio" if reason == "no_audio" else "source_down",
            translation_placeholders={"name": self.title, "minutes": str(round(const.REPAIR_AFTER_S / 60))},
        )


type SoundSentryConfigEntry = ConfigEntry[SoundSentryRuntime]

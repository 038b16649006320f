"""Build the background bank that taught sounds learn against: `scripts/run python -m training.bank`.

The bank (`engine/taught.py`) is a network's embeddings of a few thousand windows of ordinary home
background, written beside the model as `<model stem>.bank.npz` (`engine.taught.bank_path`; float16, a few MB),
where it ships with the model: rebuild it whenever the model changes (`load_bank` refuses a bank of
another release). `benchmarks.few_shot` builds its own. It comes from
the `train` and `val` splits of ../shared/data, so that the `test` split and ESC-50 stay unseen by it:

- every background source except ESC-50 (whose categories `benchmarks.few_shot` teaches and scores on)
  and the sounds a user may want to teach: knocks (nycu-knock) and UrbanSound8K's dog barks, sirens and
  car horns. What remains is rooms, speech, babble, laughter, coughs, kitchens, offices, traffic,
  machines;
- up to `PER_CLIP` windows of each clip (at the model's hop, above the level floor), then at most
  `BANK_WINDOWS` in all, drawn with a fixed seed.
"""

from __future__ import annotations

import argparse

import numpy as np

from custom_components.sound_sentry.engine.level import DEFAULT_MIN_LEVEL_DBFS
from custom_components.sound_sentry.engine.model import LoadedModel, load_model, model_path
from custom_components.sound_sentry.engine.taught import BackgroundBank, bank_path, example_windows, normalise
from training.audio import Clip, load_audio, read_clips
from training.evaluate import sound_kind

PER_CLIP = 2
BANK_WINDOWS = 5000
SEED = 20261207
TEACHABLE = ("nycu-knock", "us8k:dog_bark", "us8k:siren", "us8k:car_horn")
"""Background that a user may want to teach, kept out of the bank (a source or a `sound_kind`)."""


def bank_clips() -> list[Clip]:
    """The background clips the bank is drawn from (see the module)."""
    return [
        c
        for c in read_clips("shared")
        if c.label == "background"
        and c.split in ("train", "val")
        and c.source != "esc50"
        and c.source not in TEACHABLE
        and sound_kind(c) not in TEACHABLE
    ]


def build(model: LoadedModel) -> BackgroundBank:
    """Embed the bank's clips with `model` and draw the bank's windows."""
    rng = np.random.default_rng(SEED)
    rows = []
    for clip in bank_clips():
        windows = example_windows(model, load_audio(clip.path))
        loud = np.flatnonzero(windows.dbfs >= (DEFAULT_MIN_LEVEL_DBFS or -np.inf))
        chosen = rng.permutation(loud)[:PER_CLIP]
        rows.append(windows.embeddings[chosen])
    embeddings = np.concatenate(rows)
    embeddings = embeddings[rng.permutation(len(embeddings))[:BANK_WINDOWS]]
    return BackgroundBank(
        embeddings=normalise(embeddings),
        model=model.info.name,
        version=model.info.version,
        hop_s=model.info.hop_s,
    )


def main() -> None:
    """Build and write the bank of a shipped model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", default="accurate")
    args = parser.parse_args()
    bank = build(load_model(model_path(args.model)))
    path = bank_path(model_path(args.model))
    bank.save(path)
    print(
        f"{path.name}: {len(bank.embeddings)} windows of {len(bank_clips())} clips, "
        f"{bank.model} {bank.version}, {path.stat().st_size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()

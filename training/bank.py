"""Build the background bank that taught sounds learn against (below: `scripts/run` and the built set).

    scripts/run env EXTRA=$HOME/.cache/sound-sentry/data-extra/manifest.csv python -m training.bank

(Naming the built set's manifest lets `scripts/run`'s Python 3.14 root file system see that set.)

The bank (`engine/taught.py`) is the model's taught network's embeddings (the pretrained mn04's,
`ModelInfo.taught`) of ten thousand windows of ordinary home background, written beside the model as
`<model stem>.bank.npz` (`engine.taught.bank_path`; float16, a few MB), where it ships with the model:
rebuild it whenever the model or its taught network changes (`load_bank` refuses a bank of another
release or network). Its id (a hash of its content) changes with it, and sounds taught on the old one
are learnt again at setup. `benchmarks.few_shot --network` builds its own. It comes from
the `train` and `val` splits of ../shared/data and of the set `training.data.build` makes from Debian
packages, so that the `test` splits and ESC-50 stay unseen by it:

- every background source except ESC-50 (whose categories `benchmarks.few_shot` teaches and scores on)
  and the sounds a user may want to teach: knocks (nycu-knock, cs496-sensing, DCASE's knocks),
  UrbanSound8K's dog barks, sirens and car horns, and the built set's animals, sirens, car horns, water
  and doors (and its scenes that mix any of them in). What remains is rooms, speech, babble, laughter,
  coughs, kitchens, offices, TV, music, games' foley, traffic, machines;
- every window of each clip at a hop of `BANK_HOP_S` (above the level floor; shifted windows of one
  sound are the hard negatives a live source sees), then `BANK_WINDOWS` of them, drawn with a fixed seed.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import re

import numpy as np

from custom_components.sound_sentry.engine.level import DEFAULT_MIN_LEVEL_DBFS
from custom_components.sound_sentry.engine.model import LoadedModel, load_model, model_path
from custom_components.sound_sentry.engine.taught import BackgroundBank, bank_path, example_windows, normalise
from training.audio import Clip, load_audio, read_clips
from training.evaluate import sound_kind

BANK_HOP_S = 0.25
BANK_WINDOWS = 10_000
"""About 7 MB at float16 (compressed)."""
SEED = 20261207
TEACHABLE = (
    "nycu-knock",
    "cs496-sensing",
    "dcase:knock",
    "us8k:dog_bark",
    "us8k:siren",
    "us8k:car_horn",
    "built:animal",
    "built:animal-cat",
    "built:animal-pig",
    "built:animal-hen",
    "built:siren",
    "built:car-horn",
    "built:water",
    "built:door",
)
"""Background that a user may want to teach, kept out of the bank (a source or a `sound_kind`)."""
_SCENE_PART = re.compile(r"audio/[^@]+?\.flac")


def bank_clips() -> list[Clip]:
    """The background clips the bank is drawn from (see the module)."""
    clips = [c for c in read_clips("all") if c.label == "background"]
    kinds = {str(c.path): sound_kind(c) for c in clips}
    roots = {str(c.path): str(c.path.parents[2]) for c in clips}

    def teachable(clip: Clip) -> bool:
        parts = [f"{roots[str(clip.path)]}/{part}" for part in _SCENE_PART.findall(clip.original)]
        return clip.source in TEACHABLE or any(kinds.get(p) in TEACHABLE for p in [str(clip.path), *parts])

    return [c for c in clips if c.split in ("train", "val") and c.source != "esc50" and not teachable(c)]


def build(model: LoadedModel) -> BackgroundBank:
    """Embed the bank's clips with `model`'s taught network and draw the bank's windows."""
    if model.info.taught is None:
        raise ValueError(f"{model.info.name} has no taught network: sounds are not taught on it")
    rng = np.random.default_rng(SEED)
    dense = replace(model, info=replace(model.info, hop_s=BANK_HOP_S))
    rows = []
    for clip in bank_clips():
        windows = example_windows(dense, load_audio(clip.path))
        rows.append(windows.embeddings[windows.dbfs >= (DEFAULT_MIN_LEVEL_DBFS or -np.inf)])
    embeddings = np.concatenate(rows)
    embeddings = embeddings[rng.permutation(len(embeddings))[:BANK_WINDOWS]]
    return BackgroundBank(
        embeddings=normalise(embeddings),
        model=model.info.name,
        version=model.info.version,
        hop_s=model.info.hop_s,
        network=model.info.taught.sha256,
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
        f"{bank.model} {bank.version}, network {bank.network[:12]}, id {bank.id}, "
        f"{path.stat().st_size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()

"""The training tests. test_model.py needs torch, which only the training environment (scripts/train)
has: the Home Assistant environments leave it out of collection on purpose (SOUND_SENTRY_ENV, set by
scripts/lib.sh), and check the same parameter count and multiply-adds on the exported ONNX graph
(tests/engine/test_model_graph.py). Run it with the training venv's Python:
    ~/.cache/sound-sentry/venv-training/bin/python -m pytest tests/training/test_model.py
"""

import os

collect_ignore = ["test_model.py"] if os.environ.get("SOUND_SENTRY_ENV") in {"latest", "minimum"} else []

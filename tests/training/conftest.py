"""The training tests. test_model.py and test_augment.py need torch, which only the training environment
(scripts/train) has: the Home Assistant environments leave them out of collection on purpose
(SOUND_SENTRY_ENV, set by scripts/lib.sh; they check the parameter count and multiply-adds on the
exported ONNX graph instead, tests/engine/test_model_graph.py), and `scripts/test` runs them in a phase
of their own: `TRAIN_MODULE=pytest scripts/train tests/training/test_model.py tests/training/test_augment.py`.
"""

import os

collect_ignore = (
    [
        "test_model.py",
        "test_augment.py",
        "test_logmel.py",
        "test_mobilenet_export.py",
        "test_distill.py",
        "test_joint.py",
    ]
    if os.environ.get("SOUND_SENTRY_ENV") in {"latest", "minimum"}
    else []
)

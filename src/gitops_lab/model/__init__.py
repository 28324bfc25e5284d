"""The lab's model workload: a small pump-failure classifier, standard library only.

The dataset, its preparation, training and evaluation live here; the server that
serves the trained artifacts is ``environments/base/server.py`` (it ships in a
ConfigMap, so it cannot import this package and repeats the tiny predict step).

``EVAL_METRIC`` and ``EVAL_THRESHOLD`` are the one place that says what a good
enough model is. Every artifact records both, so a gate can read them from the
artifact alone.
"""

from __future__ import annotations

#: Input features, in the order the model's weights use them.
FEATURES = ("temperature_c", "vibration_mm_s", "pressure_bar", "rpm")
#: The label column: 1 if the pump failed within the next 7 days.
LABEL = "failure"

#: The metric a model is judged by, on the clean held-out split.
EVAL_METRIC = "accuracy"
#: A model passes evaluation when EVAL_METRIC >= EVAL_THRESHOLD.
EVAL_THRESHOLD = 0.65

#: The versions the training script writes (environments/base/models/<version>.json).
VERSIONS = ("v1", "v2", "v3", "v4", "v5", "v6")

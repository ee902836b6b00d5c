"""TF Serving's model directory layout: ``BASE/<version>/`` with a positive integer version.

Anything else under the base path (hidden temporary exports, notes) is not a version, exactly as
``tensorflow_model_server`` ignores it. Inside a version, TF Serving replays the PredictionLog
records of ``WARMUP_FILE`` at load time.
"""
from pathlib import Path

WARMUP_FILE = Path("assets.extra", "tf_serving_warmup_requests")


def version_numbers(base_path):
    """Sorted version numbers present under ``base_path`` (empty if it does not exist)."""
    base = Path(base_path)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir()
                  if p.is_dir() and p.name.isdigit() and int(p.name) > 0)

"""What several test modules share that is not a fixture (fixtures live in conftest.py)."""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def without_timing(metrics: dict) -> dict:
    """metrics.json minus wall-clock times, which no two runs share."""
    metrics = json.loads(json.dumps(metrics))
    metrics.pop("stage_seconds", None)
    for cost in metrics.get("costs", {}).values():
        cost.pop("training_seconds", None)
    return metrics

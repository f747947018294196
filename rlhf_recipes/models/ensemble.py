"""Reward-model ensembles read as one reward model (config/schema.py's `reward_model.ensemble`).

A stored ensemble is a directory with `ensemble.json` (the aggregate, its penalty, and each member's shift and
scale onto member 0's scores) and the members' weights in members/<i>/. `load_reward` gives every consumer one
module either way: a single reward model, or a `RewardEnsemble` (models/ensemble_module.py, which imports
torch) read as their aggregate.
"""

import json
from pathlib import Path

from .loading import Loading, load_reward_model

ENSEMBLE_FILE = "ensemble.json"
MEMBERS = "members"


def is_ensemble(path: Path | str) -> bool:
    return (Path(path) / ENSEMBLE_FILE).is_file()


def member_paths(path: Path | str) -> list[Path]:
    """The directories of a stored reward model's members: the model itself when it is not an ensemble."""
    path = Path(path)
    if not is_ensemble(path):
        return [path]
    count = json.loads((path / ENSEMBLE_FILE).read_text())["members"]
    return [path / MEMBERS / str(index) for index in range(count)]


def load_reward(path: Path | str, pad_token_id: int, loading: Loading, device: str = "cpu"):
    """The reward model stored at `path` (a reward_model stage's output), an ensemble read as its aggregate. Loading
    a saved reward model draws nothing from torch's random stream, so a stage that reads member 0 alone
    (aggregate: single) trains as it would on the single reward model (tests/test_ensemble.py)."""
    if not is_ensemble(path):
        return load_reward_model(str(path), pad_token_id, loading, device)
    from .ensemble_module import RewardEnsemble

    described = json.loads((Path(path) / ENSEMBLE_FILE).read_text())
    members = [load_reward_model(str(member), pad_token_id, loading, device) for member in member_paths(path)]
    return RewardEnsemble(
        members, described["scales"], described["shifts"], described["aggregate"], described["penalty"]
    )

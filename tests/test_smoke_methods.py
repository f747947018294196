"""recipes/smoke_methods.yaml through the CLI: every method trains from the same SFT policy, pairs and
reward model, and every one of them really improves held-out gold over the reference. Slow (about 2.5
minutes here): run with -m slow."""

import json
import subprocess
import sys

import pytest

from rlhf_recipes.stages.methods import METHODS

from .helpers import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def methods_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("smoke_methods") / "run"
    command = [sys.executable, "-m", "rlhf_recipes", "run", "recipes/smoke_methods.yaml", "--output-dir", str(run_dir)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, json.loads((run_dir / "metrics.json").read_text())


def test_every_method_trains_a_policy_from_the_same_start(methods_run):
    run_dir, metrics = methods_run
    assert list(metrics["methods"]) == [cls.stage for cls in METHODS]
    assert set(metrics["policies"]) == {"reference", *metrics["methods"]}
    stages = json.loads((run_dir / "run.json").read_text())["stages"]
    assert [name for name in ("samples", "preferences", "reward_model") if stages[name]["reused"]] == []
    assert set(metrics["costs"]) >= set(metrics["methods"]), "every method has its cost"
    assert set(metrics["implicit_rewards"]) == {"dpo", "kto", "online_dpo"}


@pytest.mark.parametrize("name", [cls.stage for cls in METHODS])
def test_each_method_beats_the_reference_on_held_out_gold(methods_run, name):
    """Significantly: the 95% t interval of the gold gain, paired by held-out prompt, lies above 0."""
    _, metrics = methods_run
    gain = metrics["policies"][name]["gold_gain"]
    assert gain["low"] > 0, f"{name}: gold gain {gain['mean']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}]"
    assert metrics["policies"][name]["win_rate_vs_reference"] > 0.5

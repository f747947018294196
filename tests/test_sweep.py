"""A sweep of the smoke recipe over PPO's KL coefficient and two seeds: slow, run with -m slow."""

import json
import os
import subprocess
import sys

import pytest

from .helpers import REPO

pytestmark = pytest.mark.slow


def test_kl_coef_sweep_shares_upstream_stages_and_orders_kl(tmp_path):
    run_dir = tmp_path / "sweep"
    overrides = [
        "sweep={key: ppo.kl_coef, values: [0.01, 1.0], seeds: [0, 1]}",
        "dpo=null",
        "ppo.total_episodes=1024",
        "ppo.eval_every_updates=null",
        "evaluation.best_of_n=[1, 4]",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "rlhf_recipes", "run", "recipes/smoke.yaml", *overrides, "--output-dir", str(run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    ppo = metrics["policies"]["ppo"]
    assert set(ppo) == {"0.01", "1.0"} and ppo["1.0"]["seeds"] == 2
    assert ppo["1.0"]["kl_mean"]["mean"] < ppo["0.01"]["kl_mean"]["mean"], (
        "a larger KL coefficient keeps the policy closer"
    )
    assert os.path.islink(run_dir / "variants" / "kl_coef-1.0_seed-0" / "reward_model"), (
        "the reward model is trained once per seed"
    )
    assert not os.path.islink(run_dir / "variants" / "kl_coef-0.01_seed-1" / "reward_model"), (
        "another seed trains its own"
    )
    report = (run_dir / "report.md").read_text()
    assert "| ppo | 1.0 | 2 |" in report and (run_dir / "plots" / "sweep_frontier.png").is_file()

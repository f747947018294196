"""Small studies of the smoke recipe: PPO at two KL coefficients over two seeds; DPO over two training seeds.
Slow, run with -m slow."""

import json
import os
import subprocess
import sys

import pytest

from .helpers import REPO

pytestmark = pytest.mark.slow


def run(run_dir, *overrides):
    return subprocess.run(
        [sys.executable, "-m", "rlhf_recipes", "run", "recipes/smoke.yaml", *overrides, "--output-dir", str(run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )


def test_a_study_shares_stages_orders_kl_and_reports_verdicts_over_seeds(tmp_path):
    run_dir = tmp_path / "study"
    overrides = [
        "study={seeds: [0, 1], grid: {ppo: {kl_coef: [0.01, 1.0]}}, kl_budgets: [0.5, 1]}",
        "dpo=null",
        "ppo.total_episodes=1024",
        "ppo.eval_every_updates=null",
        "evaluation.best_of_n=[1, 4]",
    ]
    result = run(run_dir, *overrides)
    assert result.returncode == 0, result.stderr
    for seed in (0, 1):
        policies = json.loads((run_dir / f"seed-{seed}" / "metrics.json").read_text())["policies"]
        assert {"ppo_kl_coef_0.01", "ppo_kl_coef_1"} <= set(policies)
        assert policies["ppo_kl_coef_1"]["kl_mean"] < policies["ppo_kl_coef_0.01"]["kl_mean"], (
            "a larger KL coefficient keeps the policy closer"
        )
        assert os.path.isdir(run_dir / f"seed-{seed}" / "reward_model"), "one reward model per seed"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["kind"], metrics["seeds"], metrics["runs"]) == ("study", [0, 1], ["seed-0", "seed-1"])
    summary = metrics["conditions"]["all"]
    assert set(summary["families"]) == {"ppo", "best_of_n"}
    point = summary["families"]["ppo"]["points"][0]
    assert point["gold"]["n"] == 2 and point["gold"]["low"] <= point["gold"]["mean"] <= point["gold"]["high"]
    pair = summary["by_kl"]["0.5"]["pairs"][0]
    assert {pair["first"], pair["second"]} == {"ppo", "best_of_n"}
    assert pair["verdict"] == "not distinguishable with 2 seeds (a verdict needs 3)", "two seeds decide nothing"
    assert set(summary["power"]) >= {"replicates", "by_kl", "detect_gold_difference"}
    report = (run_dir / "report.md").read_text()
    assert (
        "## Verdict at KL budgets" in report
        and "## Verdict at equal compute" in report
        and summary["summary"] in report
    )
    for plot in ("frontiers", "compute", "overoptimization"):
        assert (run_dir / "plots" / f"{plot}.png").is_file(), plot

    again = run(run_dir, *overrides)  # an interrupted or finished study resumes: nothing is rebuilt
    assert again.returncode == 0, again.stderr
    for seed in (0, 1):
        stages = json.loads((run_dir / f"seed-{seed}" / "run.json").read_text())["stages"]
        assert all(stage["reused"] for stage in stages.values()), stages


def test_training_seeds_retrain_the_methods_on_data_built_once(tmp_path):
    """A run per training seed: the second links every data stage of the first from the stage store
    (same seed, same fingerprints) and trains its own DPO policy, which differs from the first's."""
    run_dir = tmp_path / "study"
    overrides = [
        "study={training_seeds: [0, 1], kl_budgets: [0.5]}",
        "ppo=null",
        "dpo.eval_every_steps=null",
        "evaluation.best_of_n=[1, 2]",
    ]
    result = run(run_dir, *overrides)
    assert result.returncode == 0, result.stderr
    first, second = run_dir / "training-seed-0", run_dir / "training-seed-1"
    for stage in ("prompts", "model", "sft", "samples", "preferences", "reward_model"):
        assert (second / stage).is_symlink() and (second / stage).resolve() == (first / stage).resolve(), stage
    for stage in ("dpo", "evaluation"):  # trained and evaluated again: stored apart
        assert (second / stage).resolve() != (first / stage).resolve(), stage
    weights = [(run / "dpo" / "model.safetensors").read_bytes() for run in (first, second)]
    assert weights[0] != weights[1], "another training seed trains another policy"
    plan = json.loads((run_dir / "study.json").read_text())
    assert (plan["replicates"], plan["seeds"], plan["training_seeds"]) == ("training_seeds", [0], [0, 1])
    assert [(run["dir"], run["seed"], run["training_seed"]) for run in plan["runs"]] == [
        ("training-seed-0", 0, 0),
        ("training-seed-1", 0, 1),
    ]

"""A study's report from synthetic runs with known answers: three seeds of two methods whose gold follows
Gao et al.'s RL form (one clearly better than the other, one over-optimized at its weakest setting) and
best-of-N; and `rlhf compare` grouping runs by gold judge. Fast: no training."""

import json
import math
import random

from rlhf_recipes.reporting.compare import compare_text
from rlhf_recipes.reporting.study_report import write_study_report
from rlhf_recipes.run.directory import write_atomically

SEEDS = [0, 1, 2]
# method -> (knob, {knob value: KL}, alpha and beta of the gold gain d(alpha - beta ln d), noise per seed);
# simpo is dpo's twin (one policy at KL 4.5) with five times the noise: not distinguishable from dpo at KL 4.
FAMILIES = {
    "dpo": ("beta", {0.01: 9.0, 0.1: 4.0, 1.0: 1.0}, 0.30, 0.20, 0.01),
    "ppo": ("kl_coef", {0.01: 7.0, 0.05: 3.0, 0.2: 1.5}, 0.15, 0.05, 0.01),
    "simpo": (None, {None: 4.5}, 0.30, 0.20, 0.05),
}


def policy_name(method, knob, value):
    return method if knob is None else f"{method}_{knob}_{format(value, 'g')}"


def policy(gold, learned, kl):
    return {"gold_mean": gold, "reward_model_mean": learned, "kl_mean": kl, "win_rate_vs_reference": 0.5,
            "gold_ci95": [gold - 0.1, gold + 0.1]}  # fmt: skip


def cost(generations, seconds):
    return {"training_generations": generations, "training_seconds": seconds}


def run_metrics(seed: int, gold_labeler: str = "sentiment (VADER compound)") -> dict:
    rng = random.Random(seed)
    shift = rng.gauss(0, 0.05)  # a seed's data and reward model move every method alike
    reference = 0.1 + shift
    policies = {"reference": policy(reference, 0.0, 0.0)}
    costs = {"reference": cost(0, 0.0)}
    for method, (knob, settings, alpha, beta, noise) in FAMILIES.items():
        for value, kl in settings.items():
            d = math.sqrt(kl)
            gain = d * (alpha - beta * math.log(d))
            name = policy_name(method, knob, value)
            policies[name] = policy(reference + gain + rng.gauss(0, noise), 0.5 * kl, kl + rng.gauss(0, 0.05))
            costs[name] = cost(1440 + (1024 if method == "ppo" else 0), 30.0 if method == "ppo" else 5.0)
    best_of_n = {}
    for n in (1, 2, 4, 8, 16):
        bound = math.log(n) - (n - 1) / n
        best_of_n[str(n)] = {"gold_mean": reference + 0.2 * math.sqrt(bound) + rng.gauss(0, 0.01),
                             "reward_model_mean": bound, "kl_bound": bound}  # fmt: skip
        costs[f"best_of_{n}"] = cost(1440, 4.0)
    return {
        "name": "synthetic",
        "seed": seed,
        "labeler": gold_labeler,
        "gold_labeler": gold_labeler,
        "policies": policies,
        "best_of_n": best_of_n,
        "costs": costs,
        "reward_model": {"heldout_accuracy": 0.9},
        "methods": {name: name.split("_")[0] for name in policies if name != "reference"},
        "power": {"detectable_gold_difference": 0.09, "prompts": 72},
    }


def make_study(root):
    families = {
        method: {"method": method, "knob": knob, "policies": {policy_name(method, knob, v): v for v in settings}}
        for method, (knob, settings, *_) in FAMILIES.items()
    }
    plan = {
        "name": "synthetic",
        "seeds": SEEDS,
        "condition": None,
        "grid": {},
        "kl_budgets": [1.0, 2.0, 4.0, 8.0],
        "families": families,
        "runs": [{"dir": f"seed-{seed}", "condition": None, "seed": seed} for seed in SEEDS],
    }
    root.mkdir()
    write_atomically(root / "study.json", json.dumps(plan))
    for seed in SEEDS:
        (root / f"seed-{seed}").mkdir()
        write_atomically(root / f"seed-{seed}" / "metrics.json", json.dumps(run_metrics(seed)))
    return root


def test_a_study_report_reads_frontiers_over_seeds(tmp_path):
    study = make_study(tmp_path / "study")
    metrics = write_study_report(study)
    summary = metrics["conditions"]["all"]
    at_2 = summary["by_kl"]["2"]
    # dpo's gain at KL 2 (interpolated between KL 1 and 4) is about 0.31, ppo's about 0.19
    verdicts = {(p["first"], p["second"]): p["verdict"] for p in at_2["pairs"]}
    assert verdicts["dpo", "ppo"] == "dpo beats ppo"
    at_4 = {(p["first"], p["second"]): p for p in summary["by_kl"]["4"]["pairs"]}
    assert at_4["dpo", "simpo"]["verdict"] == "not distinguishable with 3 seeds"
    assert at_4["dpo", "simpo"]["seeds_to_detect_observed"] > 3
    assert summary["by_kl"]["8"]["methods"]["simpo"] is None, "simpo's one policy is at KL 4.5: its frontier ends there"
    assert at_2["methods"]["dpo"]["n"] == 3 and at_2["methods"]["dpo"]["low"] is not None
    assert summary["by_kl"]["8"]["methods"]["best_of_n"] is None, "best-of-16's bound (1.8 nats) does not reach 8"
    fit = summary["overoptimization"]["dpo"]["fit"]
    assert abs(fit["alpha"] - 0.30) < 0.05 and abs(fit["beta"] - 0.20) < 0.05
    assert summary["overoptimization"]["dpo"]["passed_fitted_peak"], "dpo's peak is at KL ≈ 1.6; it trained to 9"
    flags = summary["overoptimization"]["dpo"]["flags"]
    assert flags["dpo_beta_0.01"]["state"] == "over-optimized", flags["dpo_beta_0.01"]
    assert flags["dpo_beta_1"]["state"] == "fine"
    assert "1440" in summary["by_compute"] and "2464" in summary["by_compute"]
    assert summary["by_compute"]["1440"]["methods"]["ppo"] is None, "no PPO policy costs as little as DPO"
    report = (study / "report.md").read_text()
    for heading in ("Verdict at KL budgets", "Verdict at equal training compute", "Over-optimization", "Power"):
        assert heading in report
    assert "dpo beats ppo" in report or "ppo beats dpo" in report
    assert "not distinguishable with 3 seeds: dpo–simpo" in report
    for plot in ("frontiers.png", "compute.png", "overoptimization.png"):
        assert (study / "plots" / plot).stat().st_size > 10_000
    assert "data:image/png;base64," in (study / "report.html").read_text()


def test_compare_groups_runs_by_gold_judge_and_never_ranks_across_them(tmp_path):
    paths = []
    for seed, judge in ((0, "sentiment"), (1, "sentiment"), (2, "python labeler my_score")):
        directory = tmp_path / f"run{seed}"
        directory.mkdir()
        (directory / "metrics.json").write_text(json.dumps(run_metrics(seed, judge)))
        paths.append(directory)
    text = compare_text(paths)
    assert "judged by 2 different gold labelers" in text
    sentiment, custom = text.split("# Gold judge: python labeler my_score")
    assert "# Gold judge: sentiment (2 runs)" in sentiment and "Over the 2 runs as replicates" in sentiment
    assert "run2" not in sentiment and f"{paths[2]} (seed 2)" in custom
    assert "One run: no verdict" in custom

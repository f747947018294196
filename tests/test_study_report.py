"""A study's report from synthetic runs with known answers: three seeds of two methods whose gold follows
Gao et al.'s RL form (one clearly better than the other, one over-optimized at its weakest setting) and
best-of-N; and `rlhf compare` grouping runs by gold judge. Fast: no training."""

import json
import math
import random

import pytest

from rlhf_recipes.reporting.compare import compare_text
from rlhf_recipes.reporting.study_report import write_study_report
from rlhf_recipes.runtime.files import write_atomically

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
    assert at_4["dpo", "simpo"]["detectable_difference"]["value"] > abs(at_4["dpo", "simpo"]["difference"]["mean"])
    assert at_2["comparisons"] == 3 and all("p" in pair for pair in at_2["pairs"]), "best-of-16 stops at 1.8 nats"
    assert summary["by_kl"]["8"]["methods"]["simpo"] is None, "simpo's one policy is at KL 4.5: its frontier ends there"
    assert (at_2["methods"]["dpo"]["n"], at_2["methods"]["dpo"]["of"]) == (3, 3) and at_2["methods"]["dpo"]["low"]
    assert summary["by_kl"]["8"]["methods"]["best_of_n"] is None, "best-of-16's bound (1.8 nats) does not reach 8"
    fit = summary["overoptimization"]["dpo"]["fit"]
    assert abs(fit["alpha"] - 0.30) < 0.05 and abs(fit["beta"] - 0.20) < 0.05
    assert fit["peak"] == "within" and 1.5 < fit["peak_kl"] < 4.5, "dpo's peak is at KL ≈ 2.7; it trained to 9"
    assert fit["intervals"]["peak_kl"][0] < fit["peak_kl"] < fit["intervals"]["peak_kl"][1]
    flags = summary["overoptimization"]["dpo"]["flags"]
    assert flags["dpo_beta_0.01"]["state"] == "over-optimized", flags["dpo_beta_0.01"]
    assert flags["dpo_beta_0.01"]["compared_with"] == "dpo_beta_0.1", "the setting before it by KL, named in advance"
    assert flags["dpo_beta_1"]["state"] == "fine" and flags["dpo_beta_1"]["compared_with"] == "reference"
    answers = 1  # the synthetic reference has no `n`: one answer per prompt, one generation each (N for best-of-N)
    assert str(1440 + answers) in summary["by_compute"] and str(2464 + answers) in summary["by_compute"]
    assert summary["by_compute"][str(1440 + answers)]["methods"]["ppo"] is None, "no PPO policy costs as little"
    assert summary["by_compute"][str(1440 + answers)]["methods"]["best_of_n"]["policy"] == "best_of_1"
    report = (study / "report.md").read_text()
    for heading in ("Verdict at KL budgets", "Verdict at equal compute", "Over-optimization", "Power"):
        assert heading in report
    assert "dpo beats ppo" in report or "ppo beats dpo" in report
    assert "not distinguishable with 3 seeds: dpo–simpo" in report and "(n 3/3)" in report
    assert "Holm-adjusted over 3 comparisons" in report
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
    assert "One run (one replicate): no verdict" in custom


def test_compare_counts_a_run_given_twice_or_copied_as_one_replicate(tmp_path):
    """`rlhf compare RUN RUN` and `rlhf compare RUN COPY` are one replicate, not two: no interval of width
    zero, no verdict, and the output says why. Two runs with other seeds are two."""
    import shutil

    def make_run(directory, seed):
        directory.mkdir()
        metrics = run_metrics(seed)
        (directory / "metrics.json").write_text(json.dumps(metrics))
        for stage in ("samples", "reward_model", *metrics["methods"]):
            (directory / stage).mkdir()
            (directory / stage / "stage.json").write_text(json.dumps({"fingerprint": f"{stage}-{seed}"}))
        return directory

    run = make_run(tmp_path / "run", 0)
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    grown = tmp_path / "grown"  # a copy rerun with one more method: its other policies are the same draws
    shutil.copytree(run, grown)
    metrics = json.loads((grown / "metrics.json").read_text())
    metrics["policies"]["kto"] = metrics["policies"]["simpo"] | {"gold_mean": 0.9}
    metrics["costs"]["kto"], metrics["methods"]["kto"] = metrics["costs"]["simpo"], "kto"
    (grown / "metrics.json").write_text(json.dumps(metrics))
    (grown / "kto").mkdir()
    (grown / "kto" / "stage.json").write_text(json.dumps({"fingerprint": "kto-0"}))
    for given in ([run, run], [run, copy], [run, tmp_path / "run" / "metrics.json"], [run, grown]):
        text = compare_text(given)
        assert "counted once, since a copy is not a replicate" in text, given
        assert "Over the 2 runs" not in text and "One run (one replicate): no verdict" in text
        assert "beats" not in text
    other = make_run(tmp_path / "other", 1)
    assert "Over the 2 runs as replicates" in compare_text([run, other])


def test_a_condition_s_values_are_compared_with_the_first_paired_by_seed(tmp_path):
    """Two values of a condition: under the second every policy's gold is 0.2 higher on every seed. The report
    compares the second with the first per policy and per KL budget, and says which beats which."""
    study = make_study(tmp_path / "study")
    plan = json.loads((study / "study.json").read_text())
    plan["condition"] = {"key": "reward_model.ensemble.aggregate", "values": ["single", "min"]}
    plan["runs"] = []
    for value, lift in (("single", 0.0), ("min", 0.2)):
        for seed in SEEDS:
            directory = f"aggregate-{value}/seed-{seed}"
            plan["runs"].append({"dir": directory, "condition": value, "seed": seed})
            metrics = run_metrics(seed)
            for name, entry in metrics["policies"].items():
                entry["gold_mean"] += lift if name != "reference" else 0.0
            for entry in metrics["best_of_n"].values():
                entry["gold_mean"] += lift
            (study / directory).mkdir(parents=True)
            write_atomically(study / directory / "metrics.json", json.dumps(metrics))
    write_atomically(study / "study.json", json.dumps(plan))
    metrics = write_study_report(study)
    across = metrics["across_conditions"]
    first, second = "single", "min"
    assert across["baseline"] == first
    row = across["tables"]["dpo"]["dpo_beta_0.1"]
    ((pair,),) = [row["pairs"]]
    assert (pair["first"], pair["second"]) == (second, first) and pair["difference"]["mean"] == pytest.approx(0.2)
    assert pair["verdict"] == f"{second} beats {first}"
    assert across["tables"]["best_of_n"]["KL 1"]["pairs"][0]["decided"]
    report = (study / "report.md").read_text()
    assert "The values of reward_model.ensemble.aggregate compared" in report
    assert f"{second} beats {first}" in report

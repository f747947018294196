"""metrics.json, computed from a run directory's saved artifacts only, so `rlhf report` can rebuild it
without retraining. README.md documents every key."""

from pathlib import Path

from ..config.schema import MEMBER_PREFIX, Preferences, Recipe
from ..errors import RecipeError
from ..labeling.labelers import describe
from ..metrics import (
    bayes_accuracy,
    best_of_n_kl_bound,
    distinct_n,
    mean,
    r_squared,
    spearman,
    standardized_gain,
    std,
    win_rate,
    win_tie_loss,
)
from .overoptimization import INCONCLUSIVE, Comparison, overoptimization_state
from .run_files import SCHEMA_VERSION, evaluation_rows, fix_for, read_json, read_jsonl, read_recipe, reported_methods
from .statistics import (
    LEVEL,
    POWER,
    detectable_difference,
    detectable_with_interval,
    paired_difference,
    t_interval,
    units_needed,
)

# Differences a power statement sizes a run for, in standard deviations of the reference's gold scores.
POWER_TARGETS_SD = (0.1, 0.2, 0.5)


def summarise_run(run_dir: Path) -> dict:
    """Every number of the report, from run_dir's files."""
    recipe = read_recipe(run_dir)
    by_policy = evaluation_rows(run_dir)
    methods = reported_methods(run_dir, method_names(recipe), by_policy)
    reference = by_policy["reference"]
    policies = {name: policy_summary(rows, reference) for name, rows in by_policy.items()}
    bon_path = run_dir / "evaluation" / "best_of_n.jsonl"
    bon_rows = read_jsonl(bon_path) if bon_path.exists() else []
    best_of_n = best_of_n_summary(bon_rows, reference, recipe.evaluation.best_of_n) if bon_rows else {}
    stats = read_json(run_dir / "preferences" / "stats.json")
    curves = {
        name: read_json(run_dir / name / "curve.json", kind=list)
        for name in policies
        if (run_dir / name / "curve.json").exists()
    }
    metrics = {
        "schema_version": SCHEMA_VERSION,
        "name": recipe.name,
        "seed": recipe.seed,
        "training_seed": recipe.training_seed,
        "labeler": training_labels(recipe),
        "gold_labeler": describe(recipe.gold()),
        "preferences": {
            "train_pairs": stats["train"]["pairs"],
            "heldout_pairs": stats["heldout"]["pairs"],
            "ties_dropped": stats["train"]["ties_dropped"],
            "noisy_label_fraction": stats["train"]["noisy_label_fraction"],
            "labeler_calls": stats["labeler_calls"],
        }
        | {key: value for key, value in stats["train"].items() if key.startswith("judge_")},
        "reward_model": reward_model_summary(run_dir, recipe.preferences),
        "policies": policies,
        "best_of_n": best_of_n,
        "best_of_n_source": (
            "the samples stage's held-out responses (same policy and sampling settings)"
            if bon_rows and bon_rows[0].get("source") == "samples stage"
            else "drawn from the reference at evaluation"
        ),
        "methods": methods,
        "implicit_rewards": implicit_summary(run_dir),
        "training_curves": {
            name: {"points": points, "overoptimization": curve_overoptimization(points)}
            for name, points in curves.items()
        },
        "power": power_summary(policies, by_policy["reference"]),
        "stage_seconds": {stage: info["seconds"] for stage, info in read_json(run_dir / "run.json")["stages"].items()},
    }
    metrics["costs"] = cost_summary(run_dir, recipe, metrics)
    return metrics


def training_labels(recipe: Recipe) -> str:
    """Where the training labels come from: the labeler, described, or your own pairs' dataset."""
    if recipe.labeler is not None:
        return describe(recipe.labeler)
    return f"your own pairs ({recipe.preferences.dataset.source})"


def by_prompt(rows: list[dict], key: str) -> list[float]:
    """The mean of `key` over each prompt's responses, in prompt order: the unit of every interval of a run
    (a prompt's responses share the prompt, so they are not independent draws)."""
    groups: dict[int, list[float]] = {}
    for row in rows:
        groups.setdefault(row["prompt_index"], []).append(row[key])
    return [mean(values) for _, values in sorted(groups.items())]


def policy_summary(rows: list[dict], reference_rows: list[dict]) -> dict:
    """One policy's entry in metrics.json; responses pair with the reference's by prompt and sample index."""
    gold = [row["gold"] for row in rows]
    learned = [row["reward_model"] for row in rows]
    reference_gold = [row["gold"] for row in reference_rows]
    reference_learned = [row["reward_model"] for row in reference_rows]
    wins, ties, losses = win_tie_loss(gold, reference_gold)
    gold_by_prompt = by_prompt(rows, "gold")
    interval = t_interval(gold_by_prompt)
    gold_gain = paired_difference(gold_by_prompt, by_prompt(reference_rows, "gold"))
    learned_gain = paired_difference(by_prompt(rows, "reward_model"), by_prompt(reference_rows, "reward_model"))
    kl = t_interval(by_prompt(rows, "kl"))
    state, evidence = overoptimization_state(
        kl, learned_gain, gold_gain, [Comparison("the reference", kl, learned_gain, gold_gain)]
    )
    learned_gain_sd, gold_gain_sd = (
        standardized_gain(learned, reference_learned),
        standardized_gain(gold, reference_gold),
    )
    words = sorted(row["words"] for row in rows)
    return {
        "gold_mean": mean(gold),
        "gold_std": std(gold),
        "gold_ci95": [interval.low, interval.high],
        "gold_gain": gold_gain.as_dict(),
        "reward_model_mean": mean(learned),
        "learned_gain": learned_gain.as_dict(),
        "learned_gain_sd": learned_gain_sd,
        "gold_gain_sd": gold_gain_sd,
        "learned_minus_gold_gap": learned_gain_sd - gold_gain_sd,
        "kl_mean": mean([row["kl"] for row in rows]),
        "kl": kl.as_dict(),
        "win_rate_vs_reference": win_rate(wins, ties, losses),
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "mean_length_words": mean(words),
        "length_words": {
            "p10": words[len(words) // 10],
            "p50": words[len(words) // 2],
            "p90": words[(9 * len(words)) // 10],
        },
        "distinct_1": distinct_n([row["response"] for row in rows], 1),
        "distinct_2": distinct_n([row["response"] for row in rows], 2),
        "overoptimization": {"state": state, "evidence": evidence},
        "n": len(rows),
        "prompts": len(gold_by_prompt),
    }


def curve_overoptimization(points: list[dict]) -> dict:
    """The over-optimization flag of a training run from its held-out curve, paired by prompt: the last point
    against two points named before gold is looked at, the first (the initial policy) and the checkpoint
    nearest the middle of training, sharing one error budget (reporting/overoptimization.py)."""
    if len(points) < 2 or any("gold" not in point for point in points):
        return {"state": INCONCLUSIVE, "evidence": "fewer than two points with per-prompt scores"}
    first, final = points[0], points[-1]
    named = [first] + [middle_checkpoint(points)] if len(points) > 2 else [first]

    def against(point: dict, name: str) -> Comparison:
        return Comparison(name, *(paired_difference(final[key], point[key]) for key in ("kl", "reward_model", "gold")))

    comparisons = [
        against(point, "the initial policy" if point is first else f"step {point['step']}") for point in named
    ]
    state, evidence = overoptimization_state(
        t_interval(final["kl"]),
        paired_difference(final["reward_model"], first["reward_model"]),
        paired_difference(final["gold"], first["gold"]),
        comparisons,
    )
    return {"state": state, "evidence": evidence, "compared_with": [point["step"] for point in named]}


def middle_checkpoint(points: list[dict]) -> dict:
    """The checkpoint strictly between the first and the last whose step is nearest half of the last step."""
    half = (points[0]["step"] + points[-1]["step"]) / 2
    return min(points[1:-1], key=lambda point: abs(point["step"] - half))


def power_summary(policies: dict[str, dict], reference: list[dict]) -> dict:
    """What this run's held-out set can detect: the smallest gold difference between a policy and the
    reference that a paired t test over prompts finds with 80% power at the 5% level (exact, noncentral t,
    with the interval the SD's estimation gives it; from the median,
    over policies, of the standard deviation of per-prompt differences), and the prompts needed for
    differences of POWER_TARGETS_SD reference SDs. One seed: training randomness is not in these."""
    gains = [summary["gold_gain"] for name, summary in policies.items() if name != "reference"]
    sds = [gain["sd"] for gain in gains if gain["sd"] is not None]
    prompts = policies["reference"]["prompts"]
    sd = sorted(sds)[len(sds) // 2] if sds else None  # no trained policy: nothing measured, no claim
    scale = std([row["gold"] for row in reference])
    return {
        "unit": "prompts",
        "prompts": prompts,
        "responses_per_prompt": len(reference) // max(prompts, 1),
        "level": LEVEL,
        "power": POWER,
        "sd_of_paired_difference": sd,
        "detectable_gold_difference": None if sd is None else detectable_difference(sd, prompts),
        "detectable_gold_difference_interval": detectable_with_interval(sd, prompts),
        "reference_gold_sd": scale,
        "prompts_needed": {}
        if sd is None
        else {
            f"{target:g}": {"gold_difference": target * scale, "prompts": units_needed(target * scale, sd)}
            for target in POWER_TARGETS_SD
        },
    }


def best_of_n_summary(rows: list[dict], reference_rows: list[dict], ns: list[int]) -> dict:
    """Per N: the reference's best of its first N samples by learned reward, judged by gold."""
    by_prompt: dict[int, list[dict]] = {}
    for row in rows:
        by_prompt.setdefault(row["prompt_index"], []).append(row)
    first_reference = {}
    for row in reference_rows:
        first_reference.setdefault(row["prompt_index"], row["gold"])
    summary = {}
    for n in ns:
        picks = [max(samples[:n], key=lambda row: row["reward_model"]) for _, samples in sorted(by_prompt.items())]
        gold = [pick["gold"] for pick in picks]
        wins, ties, losses = win_tie_loss(gold, [first_reference[pick["prompt_index"]] for pick in picks])
        interval = t_interval(gold)
        low, high = interval.low, interval.high
        summary[str(n)] = {
            "gold_mean": mean(gold),
            "gold_ci95": [low, high],
            "reward_model_mean": mean([pick["reward_model"] for pick in picks]),
            "kl_bound": best_of_n_kl_bound(n),
            "win_rate_vs_reference": win_rate(wins, ties, losses),
            "wins": wins,
            "ties": ties,
            "losses": losses,
            "generations_per_prompt": n,
            "reward_model_calls_per_prompt": n,
            "prompts": len(picks),
        }
    return summary


def reward_model_summary(run_dir: Path, preferences: Preferences) -> dict:
    """Accuracies against gold, proxy and noisy labels, the Bayes ceiling, rank correlation, length."""
    from datasets import load_from_disk

    saved = read_json(run_dir / "reward_model" / "metrics.json")
    pairs = run_dir / "preferences" / "dataset"
    if not (pairs / "dataset_dict.json").is_file():
        raise RecipeError(f"{pairs}: not found, or not the saved pairs. {fix_for(pairs)}")
    heldout = load_from_disk(str(pairs), keep_in_memory=True)["heldout"]
    if preferences.dataset is not None:  # your own pairs: how noisy their labels are is not known
        ceiling = None
    else:
        gaps = [abs(c - r) for c, r in zip(heldout["chosen_score"], heldout["rejected_score"], strict=True)]
        ceiling = bayes_accuracy(gaps, preferences.label_flip_prob, preferences.bradley_terry_temperature)
    responses = read_jsonl(run_dir / "reward_model" / "heldout_responses.jsonl")
    learned, gold, words = ([row[key] for row in responses] for key in ("reward_model", "gold", "words"))
    accuracy = saved["heldout"]
    return {
        "heldout_accuracy": accuracy["vs_gold"],
        "heldout_accuracy_vs_proxy": accuracy["vs_proxy"],
        "heldout_accuracy_vs_labels": accuracy["vs_labels"],
        "bayes_accuracy_vs_labels": ceiling,
        "fraction_of_ceiling": accuracy["vs_labels"] / ceiling if ceiling else None,
        "heldout_pairs": accuracy["pairs"],
        "train_accuracy": saved["train"]["vs_gold"],
        "train_pairs_measured": saved["train"]["pairs"],
        "spearman_vs_gold": spearman(learned, gold),
        "length_r2": r_squared(words, learned),
        "gold_length_r2": r_squared(words, gold),
        "steps": saved["steps"],
        "members": saved["ensemble"]["members"] if "ensemble" in saved else 1,
        "ensemble": ensemble_summary(saved["ensemble"]) if "ensemble" in saved else None,
    }


def ensemble_summary(saved: dict, against: str = "vs_gold") -> dict:
    """A reward-model ensemble: how it aggregates, each member's accuracy (`against`: vs_gold, or vs_labels in a
    run without a gold judge, which names its keys so), and how much the members disagree."""
    suffix = "" if against == "vs_gold" else f"_{against}"
    return {
        "aggregate": saved["aggregate"],
        "penalty": saved["penalty"] if saved["aggregate"] == "uncertainty" else None,
        "bootstrap": saved["bootstrap"],
        f"member_heldout_accuracy{suffix}": [member["heldout"][against] for member in saved["member_metrics"]],
        f"member_train_accuracy{suffix}": [member["train"][against] for member in saved["member_metrics"]],
        "pairs_all_members_agree": saved["pairs_all_members_agree"],
        "member_sd_mean": saved["member_sd_mean"],
        "score_sd": saved["score_sd"],
    }


def method_names(recipe: Recipe) -> dict[str, str]:
    """Each trained policy's method (its section's name), in the recipe's order."""
    return {name: method.stage for name, method in recipe.methods().items()}


def implicit_summary(run_dir: Path) -> dict:
    """Per policy with an implicit reward (DPO, online DPO, KTO): its accuracy as a classifier of held-out pairs."""
    saved = read_json(run_dir / "evaluation" / "implicit_rewards.json", {})
    return {
        name: {
            "heldout_accuracy": accuracy["vs_gold"],
            "heldout_accuracy_vs_proxy": accuracy["vs_proxy"],
            "heldout_accuracy_vs_labels": accuracy["vs_labels"],
            "beta": accuracy["beta"],
        }
        for name, accuracy in saved.items()
    }


def cost_summary(run_dir: Path, recipe: Recipe, metrics: dict) -> dict:
    """What each method spent, so that gold gain can be set against generations, steps and time.

    The preference data (the train samples, each labeled once) is a shared cost of every method
    but the reference; the methods that read the learned reward (PPO, RLOO, GRPO, online DPO,
    rejection sampling, best-of-N) also pay for training it. Each method stage reports its own
    generations, reward-model calls and optimizer steps in its stage.json. Best-of-N spends at answer
    time instead: N generations and N reward-model calls per answer.
    """

    seconds = metrics["stage_seconds"]
    train_responses = sum(
        1 for row in read_jsonl(run_dir / "preferences" / "scored_responses.jsonl") if row["split"] == "train"
    )
    # an ensemble's members are stages of their own (reward_model_member_<i>), each trained and each called
    rm_steps, members = metrics["reward_model"]["steps"], metrics["reward_model"]["members"]
    rm_seconds = sum(
        spent for stage, spent in seconds.items() if stage == "reward_model" or stage.startswith(MEMBER_PREFIX)
    )
    # what labeling cost: one labeler call per train response; none for your own pairs; a judge's questions
    labels = 0 if recipe.preferences.dataset else metrics["preferences"].get("judge_questions", train_responses)

    def cost(generations, rm_calls, steps, spent, per_answer):
        return {
            "training_generations": generations,
            "labeler_calls": labels if generations else 0,
            "reward_model_calls": rm_calls * members,
            "optimizer_steps": steps,
            "training_seconds": spent,
            "generations_per_answer": per_answer,
            "reward_model_calls_per_answer": per_answer * members if per_answer > 1 else 0,
        }

    costs = {"reference": cost(0, 0, 0, 0.0, 1)}
    for n in metrics["best_of_n"]:
        costs[f"best_of_{n}"] = cost(train_responses, 0, rm_steps, rm_seconds, int(n))
    reads = {name: method.READS for name, method in recipe.methods().items()}
    for name in metrics["methods"]:
        record = read_json(run_dir / name / "stage.json")
        # run.json lists the stages of the latest invocation, which may have stopped before this one
        own, spent = record["summary"], seconds.get(name, record.get("seconds", 0.0))
        generations, calls = own.get("training_generations", 0), own.get("reward_model_calls", 0)
        if "reward_model" in reads[name]:
            costs[name] = cost(train_responses + generations, calls, rm_steps + own["steps"], rm_seconds + spent, 1)
        else:
            costs[name] = cost(train_responses + generations, calls, own["steps"], spent, 1)
    reference_gold = metrics["policies"]["reference"]["gold_mean"]
    for method, entry in costs.items():
        result = (
            metrics["best_of_n"][method.removeprefix("best_of_")]
            if method.startswith("best_of_")
            else metrics["policies"][method]
        )
        entry["gold_gain"] = result["gold_mean"] - reference_gold
        generations = entry["training_generations"]
        entry["gold_gain_per_1k_training_generations"] = (
            1000 * entry["gold_gain"] / generations if generations else None
        )
    return costs

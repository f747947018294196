"""metrics.json and the report of a run with no gold judge: your own pairs (preferences.dataset) and no
gold_labeler. Nothing then says how good a response really is, so the report says so first and compares
policies by what can be measured: the learned reward (which the online methods were trained to raise,
so a gain in it is not evidence of a better policy), KL to the reference, win rate under the reward
model, length and diversity, and the reward model's held-out accuracy against the dataset's own labels."""

from pathlib import Path

from ..config.schema import Recipe
from ..metrics import distinct_n, mean, r_squared, win_rate, win_tie_loss
from .analysis import by_prompt, ensemble_summary, method_names, training_labels
from .blocks import (
    ensemble_items,
    interval,
    judge_sentence,
    number,
    sample_blocks,
    signed_interval,
    time_blocks,
    training_seed_text,
)
from .run_files import SCHEMA_VERSION, evaluation_rows, read_json, read_jsonl, reported_methods
from .statistics import paired_difference, t_interval


def summarise_run_without_gold(run_dir: Path, recipe: Recipe) -> dict:
    by_policy = evaluation_rows(run_dir)
    reference = by_policy["reference"]
    stats = read_json(run_dir / "preferences" / "stats.json")
    saved = read_json(run_dir / "reward_model" / "metrics.json")
    heldout_rm = read_jsonl(run_dir / "reward_model" / "heldout_responses.jsonl")
    seconds = {stage: info["seconds"] for stage, info in read_json(run_dir / "run.json")["stages"].items()}
    methods = reported_methods(run_dir, method_names(recipe), by_policy)
    return {
        "schema_version": SCHEMA_VERSION,
        "name": recipe.name,
        "seed": recipe.seed,
        "training_seed": recipe.training_seed,
        "labeler": training_labels(recipe),
        "gold_labeler": None,
        "preferences": {
            "source": stats.get("source"),  # your own pairs' dataset; None for a judge's labels
            "train_pairs": stats["train"]["pairs"],
            "heldout_pairs": stats["heldout"]["pairs"],
        }
        | {key: value for key, value in stats["train"].items() if key.startswith("judge_")},
        "reward_model": {
            "heldout_accuracy_vs_labels": saved["heldout"]["vs_labels"],
            "heldout_pairs": saved["heldout"]["pairs"],
            "train_accuracy_vs_labels": saved["train"]["vs_labels"],
            "train_pairs_measured": saved["train"]["pairs"],
            "length_r2": r_squared([row["words"] for row in heldout_rm], [row["reward_model"] for row in heldout_rm]),
            "steps": saved["steps"],
            "members": saved["ensemble"]["members"] if "ensemble" in saved else 1,
            "ensemble": ensemble_summary(saved["ensemble"], "vs_labels") if "ensemble" in saved else None,
        },
        "policies": {name: policy_summary(rows, reference) for name, rows in by_policy.items()},
        "methods": methods,
        "implicit_rewards": {
            name: {"heldout_accuracy_vs_labels": accuracy["vs_labels"], "beta": accuracy["beta"]}
            for name, accuracy in read_json(run_dir / "evaluation" / "implicit_rewards.json", {}).items()
        },
        "costs": {
            name: {
                "training_generations": summary.get("training_generations", 0),
                "optimizer_steps": summary.get("steps", 0),
                "training_seconds": seconds.get(name, 0.0),
            }
            for name in methods
            for summary in [read_json(run_dir / name / "stage.json")["summary"]]
        },
        "stage_seconds": seconds,
    }


def policy_summary(rows: list[dict], reference_rows: list[dict]) -> dict:
    """A policy judged without gold: learned reward (interval over prompts), its gain over the reference
    paired by prompt, KL, and wins against the reference's response to the same prompt and sample by the
    reward model."""
    learned = by_prompt(rows, "reward_model")
    spread = t_interval(learned)
    wins, ties, losses = win_tie_loss([r["reward_model"] for r in rows], [r["reward_model"] for r in reference_rows])
    words = sorted(row["words"] for row in rows)
    return {
        "reward_model_mean": mean([row["reward_model"] for row in rows]),
        "reward_model_ci95": [spread.low, spread.high],
        "learned_gain": paired_difference(learned, by_prompt(reference_rows, "reward_model")).as_dict(),
        "kl_mean": mean([row["kl"] for row in rows]),
        "kl": t_interval(by_prompt(rows, "kl")).as_dict(),
        "reward_model_win_rate_vs_reference": win_rate(wins, ties, losses),
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "mean_length_words": mean(words),
        "distinct_1": distinct_n([row["response"] for row in rows], 1),
        "distinct_2": distinct_n([row["response"] for row in rows], 2),
        "n": len(rows),
        "prompts": len(learned),
    }


def blocks_without_gold(metrics: dict, generations: list[dict], examples: int, plots: list[str]) -> list[tuple]:
    policies, prefs, rm = metrics["policies"], metrics["preferences"], metrics["reward_model"]
    blocks: list[tuple] = [
        ("h1", f"Run `{metrics['name']}` (seed {metrics['seed']}{training_seed_text(metrics)})"),
        (
            "p",
            f"**No gold judge.** The training pairs come from {metrics['labeler']}, and the recipe names no "
            "gold_labeler, so nothing here measures how good a response really is. Policies are compared by the "
            "learned reward model, which PPO, RLOO, GRPO, online DPO and rejection sampling were trained to raise: "
            "a gain in it can be reward hacking rather than a better policy. Add a gold_labeler (a classifier, a "
            "reward model, any scoring labeler) to measure that.",
        ),
        ("h2", f"Policies on held-out prompts ({policies['reference']['n']} responses each)"),
        (
            "table",
            [
                "policy",
                "learned reward",
                "learned reward 95% CI",
                "learned gain [95% CI]",
                "KL (nats)",
                "win rate (reward model)",
                "wins / ties / losses",
                "mean words",
                "distinct-2",
            ],
            [
                [
                    name,
                    number(m["reward_model_mean"]),
                    interval(m["reward_model_ci95"]),
                    signed_interval(m["learned_gain"]) if name != "reference" else "",
                    number(m["kl_mean"]),
                    number(m["reward_model_win_rate_vs_reference"]),
                    f"{m['wins']} / {m['ties']} / {m['losses']}",
                    number(m["mean_length_words"], 1),
                    number(m["distinct_2"]),
                ]
                for name, m in policies.items()
            ],
        ),
        (
            "p",
            f"Intervals: Student's t over the {policies['reference']['prompts']} held-out prompts, each prompt's "
            "responses averaged; learned gain is paired with the reference by prompt. A gain whose interval holds 0 "
            "is not distinguishable from none. Win rate: the reward model's score of each response against the "
            "reference's response to the same prompt and sample index; a tie counts half. KL: mean log π − log "
            "π_ref over the policy's responses (nats).",
        ),
        ("h2", "Reward model"),
        (
            "list",
            [
                f"Held-out accuracy against the dataset's labels: **{number(rm['heldout_accuracy_vs_labels'])}** on "
                f"{rm['heldout_pairs']} pairs whose prompts were never trained on",
                f"On {rm['train_pairs_measured']} of its training pairs: {number(rm['train_accuracy_vs_labels'])}",
                f"Variance of the learned reward explained by length alone (R²): {number(rm['length_r2'])}",
            ]
            + (
                ensemble_items(
                    rm["ensemble"],
                    rm["ensemble"]["member_heldout_accuracy_vs_labels"],
                    rm["heldout_accuracy_vs_labels"],
                    "the dataset's labels",
                )
                if rm.get("ensemble")
                else []
            )
            + [
                f"The implicit reward β·log(π/π_ref) of `{name}` (β = {number(i['beta'], 2)}) on the same pairs: "
                f"{number(i['heldout_accuracy_vs_labels'])} against the labels"
                for name, i in metrics["implicit_rewards"].items()
            ],
        ),
        ("p", f"Preference data: {prefs['train_pairs']} train and {prefs['heldout_pairs']} held-out pairs."),
        *([("p", judge_sentence(prefs))] if "judge_questions" in prefs else []),
        ("h2", "Cost per method"),
        (
            "table",
            ["method", "training generations", "optimizer steps", "training seconds"],
            [
                [name, str(c["training_generations"]), str(c["optimizer_steps"]), number(c["training_seconds"], 1)]
                for name, c in metrics["costs"].items()
            ],
        ),
    ]
    for image, caption in (
        ("lengths.png", "Response length per policy."),
        ("trainer_logs.png", "What TRL logged: the reward model's loss and accuracy, and each method's statistics."),
    ):
        if image in plots:
            blocks.append(("image", image, caption))
    blocks += sample_blocks(generations, examples)
    blocks += time_blocks(metrics)
    return blocks

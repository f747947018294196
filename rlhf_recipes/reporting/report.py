"""report.md and a self-contained report.html, rendered from one list of blocks built from metrics.json,
so the two cannot disagree with each other or with metrics.json."""

import shutil
from pathlib import Path

from ..errors import RecipeError
from . import plots as figures
from .analysis import method_names, summarise_run
from .blocks import (
    ensemble_items,
    interval,
    judge_sentence,
    number,
    publish,
    sample_blocks,
    signed_interval,
    time_blocks,
    training_seed_text,
)
from .run_files import evaluation_rows, not_evaluated, read_json, read_recipe
from .without_gold import blocks_without_gold, summarise_run_without_gold


def build_blocks(metrics: dict, generations: list[dict], examples: int, plots: list[str]) -> list[tuple]:
    """The report as blocks: ("h1"|"h2"|"p", text), ("table", header, rows), ("image", file, caption),
    ("list", items)."""
    policies = metrics["policies"]  # the reference, then the trained policies in recipe order
    n = policies["reference"]["n"]
    blocks: list[tuple] = [
        ("h1", f"Run `{metrics['name']}` (seed {metrics['seed']}{training_seed_text(metrics)})"),
        (
            "p",
            f"Training labeler: `{metrics['labeler']}`. Gold labeler (the judge of every evaluation): "
            f"`{metrics['gold_labeler']}`, without noise.",
        ),
        ("h2", f"Policies on held-out prompts ({n} responses each)"),
        (
            "table",
            [
                "policy",
                "gold mean",
                "gold 95% CI",
                "gold gain [95% CI]",
                "learned reward",
                "learned − gold gain (SD)",
                "KL (nats)",
                "win rate",
                "wins / ties / losses",
                "mean words",
                "distinct-1",
                "distinct-2",
                "over-optimization",
            ],
            [
                [
                    name,
                    number(m["gold_mean"]),
                    interval(m["gold_ci95"]),
                    signed_interval(m["gold_gain"]) if name != "reference" else "",
                    number(m["reward_model_mean"]),
                    number(m["learned_minus_gold_gap"]),
                    number(m["kl_mean"]),
                    number(m["win_rate_vs_reference"]),
                    f"{m['wins']} / {m['ties']} / {m['losses']}",
                    number(m["mean_length_words"], 1),
                    number(m["distinct_1"]),
                    number(m["distinct_2"]),
                    m["overoptimization"]["state"] if name != "reference" else "",
                ]
                for name, m in policies.items()
            ],
        ),
        (
            "p",
            "Gold 95% CI and gold gain (over the reference, paired by prompt): Student's t intervals over the "
            f"{policies['reference']['prompts']} held-out prompts, each prompt's responses averaged (a prompt's "
            "responses are not independent draws). Win rate: each response's gold score against the reference's "
            "response to the same prompt and sample index; a tie counts half. KL: the mean over responses "
            "y ~ π of log π(y|x) − log π_ref(y|x) (the k1 estimator, in nats). Learned − gold gain: the rise of the "
            "learned reward minus the rise of gold, each in standard deviations of the reference's scores; "
            "positive means the reward model sees more improvement than gold does. Over-optimization: "
            "over-optimized (gold significantly below the reference while the learned reward is significantly "
            "above it), fine (gold rose significantly), did not move (neither KL nor the learned reward rose "
            "significantly), inconclusive (it moved, and gold neither rose nor fell significantly).",
        ),
    ]
    blocks += power_blocks(metrics)
    if "frontier.png" in plots:
        blocks.append(
            ("image", "frontier.png", "Gold reward vs KL: final policies, training checkpoints and best-of-N.")
        )
    if metrics["best_of_n"]:
        bon = sorted(metrics["best_of_n"].items(), key=lambda item: int(item[0]))
        blocks += [
            ("h2", "Best-of-N (the reference's best of N samples by learned reward)"),
            (
                "table",
                [
                    "N",
                    "gold mean",
                    "gold 95% CI",
                    "learned reward",
                    "KL bound (nats)",
                    "win rate",
                    "generations per answer",
                ],
                [
                    [
                        n,
                        number(b["gold_mean"]),
                        interval(b["gold_ci95"]),
                        number(b["reward_model_mean"]),
                        number(b["kl_bound"]),
                        number(b["win_rate_vs_reference"]),
                        str(b["generations_per_prompt"]),
                    ]
                    for n, b in bon
                ],
            ),
            (
                "p",
                f"{bon[0][1]['prompts']} held-out prompts; the N samples are nested (best of the first N). KL bound: "
                f"KL(best-of-N ‖ reference) ≤ log N − (N − 1)/N. Samples: {metrics['best_of_n_source']}.",
            ),
        ]
    blocks += reward_model_blocks(metrics, plots)
    blocks += curve_blocks(metrics, plots)
    blocks += cost_blocks(metrics)
    blocks += [
        ("h2", "Length and diversity"),
        (
            "table",
            ["policy", "p10 words", "median words", "p90 words", "distinct-1", "distinct-2"],
            [
                [
                    name,
                    str(m["length_words"]["p10"]),
                    str(m["length_words"]["p50"]),
                    str(m["length_words"]["p90"]),
                    number(m["distinct_1"]),
                    number(m["distinct_2"]),
                ]
                for name, m in policies.items()
            ],
        ),
        ("p", "distinct-n: distinct n-grams over all n-grams, pooled across a policy's responses."),
    ]
    if "lengths.png" in plots:
        blocks.append(("image", "lengths.png", "Response length per policy."))
    blocks += sample_blocks(generations, examples)
    blocks += time_blocks(metrics)
    return blocks


def power_blocks(metrics: dict) -> list[tuple]:
    power = metrics.get("power")
    if not power or power["detectable_gold_difference"] is None:
        return []
    needed = "; ".join(
        f"{target} SD ({number(entry['gold_difference'])} gold): {entry['prompts']} prompts"
        for target, entry in power["prompts_needed"].items()
    )
    detectable, sd = number(power["detectable_gold_difference"]), number(power["sd_of_paired_difference"])
    spread = power.get("detectable_gold_difference_interval")
    estimated = (
        f" (between {number(spread['low'])} and {number(spread['high'])}, as the SD is estimated: its 95% χ² interval)"
        if spread
        else ""
    )
    return [
        ("h2", "What this run can detect"),
        (
            "p",
            f"With {power['prompts']} held-out prompts ({power['responses_per_prompt']} responses each), a gold "
            f"difference between a policy and the reference smaller than **{detectable}**{estimated} is not reliably "
            f"detected ({power['power']:.0%} power, two-sided {1 - power['level']:.0%} level; from the median standard "
            f"deviation of per-prompt differences, {sd}). Prompts needed for a difference of a given size, in "
            f"reference gold SDs ({number(power['reference_gold_sd'])}): {needed}. This is one training seed: the "
            "variance of training itself is not in any interval of this report; a study over seeds (study.seeds, "
            "or study.training_seeds for training alone) measures it.",
        ),
    ]


def reward_model_blocks(metrics: dict, plots: list[str]) -> list[tuple]:
    rm, prefs = metrics["reward_model"], metrics["preferences"]
    items = [
        f"Held-out pairwise accuracy against gold: **{number(rm['heldout_accuracy'])}** on {rm['heldout_pairs']} pairs "
        "from prompts never trained on",
        f"Against the labeler before noise: {number(rm['heldout_accuracy_vs_proxy'])}; against the noisy labels it "
        f"imitates: {number(rm['heldout_accuracy_vs_labels'])}, of a Bayes ceiling of "
        f"{number(rm['bayes_accuracy_vs_labels'])} ({number(rm['fraction_of_ceiling'])} of what is attainable)"
        if rm["bayes_accuracy_vs_labels"] is not None
        else f"Against the dataset's own labels: {number(rm['heldout_accuracy_vs_labels'])}",
        f"On {rm['train_pairs_measured']} of its own training pairs, against gold: {number(rm['train_accuracy'])}",
        f"Spearman rank correlation with gold over held-out responses: {number(rm['spearman_vs_gold'])}",
        f"Variance of the learned reward explained by length alone (R²): {number(rm['length_r2'])} "
        f"(of gold: {number(rm['gold_length_r2'])})",
    ]
    if rm.get("ensemble"):
        ensemble = rm["ensemble"]
        items += ensemble_items(ensemble, ensemble["member_heldout_accuracy"], rm["heldout_accuracy"], "gold")
    for name, implicit in metrics["implicit_rewards"].items():
        items.append(
            f"The implicit reward β·log(π/π_ref) of `{name}` (β = {number(implicit['beta'], 2)}) on the same pairs: "
            f"{number(implicit['heldout_accuracy'])} against gold, {number(implicit['heldout_accuracy_vs_labels'])} "
            "against the labels"
        )
    blocks = [
        ("h2", "Reward model"),
        ("list", items),
        (
            "p",
            f"Preference data: {prefs['train_pairs']} train and {prefs['heldout_pairs']} held-out pairs; "
            + (
                f"{prefs['ties_dropped']} tied train pairs dropped; {number(prefs['noisy_label_fraction'])} of the "
                f"train labels disagree with the labeler before noise; {prefs['labeler_calls']} labeler calls."
                if prefs["noisy_label_fraction"] is not None
                else "your own pairs, labeled as the dataset gives them (their noise is unknown, so no Bayes ceiling)."
            ),
        ),
    ]
    if "judge_questions" in prefs:
        blocks.append(("p", judge_sentence(prefs)))
    if "reward_model_accuracy.png" in plots:
        blocks.append(
            ("image", "reward_model_accuracy.png", "Pairwise accuracy against gold and labels, with the Bayes ceiling.")
        )
    return blocks


def curve_blocks(metrics: dict, plots: list[str]) -> list[tuple]:
    blocks = []
    curves = metrics["training_curves"]
    if curves:
        rows = []
        for name, curve in curves.items():
            best = max(curve["points"], key=lambda point: point["gold_mean"])
            final = curve["points"][-1]
            rows.append(
                [
                    name,
                    str(best["step"]),
                    number(best["gold_mean"]),
                    number(best["kl_mean"]),
                    str(final["step"]),
                    number(final["gold_mean"]),
                    curve["overoptimization"]["state"],
                ]
            )
        blocks += [
            ("h2", "During training"),
            (
                "table",
                [
                    "method",
                    "best step (gold)",
                    "gold there",
                    "KL there",
                    "final step",
                    "final gold",
                    "over-optimization",
                ],
                rows,
            ),
            (
                "p",
                "Held-out gold, learned reward and KL measured on a fixed subset of held-out prompts during training "
                "(evaluation.curve_prompts prompts, one response each). Over-optimization compares the final point "
                "with the first and with the checkpoint nearest the middle of training, both named before gold is "
                "read, paired by prompt: "
                + "; ".join(f"{name}: {curve['overoptimization']['evidence']}" for name, curve in curves.items())
                + ".",
            ),
        ]
        if "training_curves.png" in plots:
            blocks.append(("image", "training_curves.png", "Held-out gold and learned reward during training."))
    if "trainer_logs.png" in plots:
        blocks.append(
            (
                "image",
                "trainer_logs.png",
                "What TRL logged: the reward model's loss and accuracy, and each method's own statistics.",
            )
        )
    if "win_rates.png" in plots:
        blocks.append(("image", "win_rates.png", "Win, tie and loss against the reference."))
    return blocks


def cost_blocks(metrics: dict) -> list[tuple]:
    members = metrics["reward_model"].get("members", 1)
    rows = [
        [
            method,
            str(c["training_generations"]),
            str(c["labeler_calls"]),
            str(c["reward_model_calls"]),
            str(c["optimizer_steps"]),
            number(c["training_seconds"], 1),
            str(c["generations_per_answer"]),
            number(c["gold_gain"]),
            number(c["gold_gain_per_1k_training_generations"]),
        ]
        for method, c in metrics["costs"].items()
    ]
    return [
        ("h2", "Cost per method"),
        (
            "table",
            [
                "method",
                "training generations",
                "labeler calls",
                "reward-model calls",
                "optimizer steps",
                "training seconds",
                "generations per answer",
                "gold gain",
                "gold gain per 1k training generations",
            ],
            rows,
        ),
        (
            "p",
            "Training generations include the sampled preference data every method but the reference is built on; "
            "the online methods (PPO, RLOO, GRPO, online DPO) and rejection sampling add the responses they sample "
            "while training, each scored once by the reward model. Best-of-N pays at answer time: N generations "
            "and N reward-model calls per answer. Optimizer steps and seconds include the reward model's for every "
            "method that uses it."
            + (
                f" The learned reward is an ensemble of {members} reward models: each was trained (their steps and "
                f"seconds are summed) and each is called, so a response scored once counts {members} calls."
                if members > 1
                else ""
            ),
        ),
    ]


def write_report(run_dir: Path) -> dict:
    """(Re)build metrics.json, plots/*.png, report.md and report.html from run_dir's saved artifacts. Everything
    is read and drawn before anything is replaced, so a report that fails leaves the previous one whole. A
    trained policy the evaluation lacks (the run stopped before evaluating it) is left out: the report of the
    others is written, then a RecipeError says so."""
    recipe = read_recipe(run_dir)
    gold = recipe.gold() is not None
    metrics = summarise_run(run_dir) if gold else summarise_run_without_gold(run_dir, recipe)
    generations = [row for rows in evaluation_rows(run_dir).values() for row in rows]
    staging = run_dir / ".plots.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        made = draw_plots(run_dir, metrics, generations, gold, staging)
        examples = recipe.evaluation.examples_in_report
        build = build_blocks if gold else blocks_without_gold
        publish(run_dir, metrics, build(metrics, generations, examples, made), staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone once published; what a failure left otherwise
    left_out = [name for name in method_names(recipe) if name not in metrics["methods"]]
    if left_out:
        raise RecipeError(not_evaluated(run_dir, left_out, list(metrics["policies"])))
    return metrics


def draw_plots(run_dir: Path, metrics: dict, generations: list[dict], gold: bool, staging: Path) -> list[str]:
    """The run's plots, drawn into `staging`; their file names."""
    made = ["lengths.png"]
    figures.lengths(metrics, generations, staging / "lengths.png")
    if gold:
        made += ["frontier.png", "win_rates.png", "reward_model_accuracy.png"]
        figures.frontier(metrics, staging / "frontier.png")
        figures.win_rates(metrics, staging / "win_rates.png")
        figures.reward_model_accuracy(metrics, staging / "reward_model_accuracy.png")
    if gold and metrics["training_curves"]:
        figures.training_curves(metrics, staging / "training_curves.png")
        made.append("training_curves.png")
    stages = ["reward_model", *metrics["methods"]]
    logs = {stage: read_json(run_dir / stage / "log_history.json", [], kind=list) for stage in stages}
    if figures.trainer_logs(metrics, logs, staging / "trainer_logs.png"):
        made.append("trainer_logs.png")
    return made

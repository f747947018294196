"""The study's report.md and report.html (and metrics.json, plots/), built from reporting/study.py's summary."""

import re
import shutil
from pathlib import Path

from . import study_plots
from .report import number, publish, signed_interval
from .study import summarise_study


def estimate(entry: dict | None) -> str:
    """0.512 [0.430, 0.594] (3) from an Interval's dict; "not reached" for None."""
    if entry is None:
        return "not reached"
    if entry["low"] is None:
        return f"{entry['mean']:.3f} (1 seed, no interval)"
    return f"{entry['mean']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"


def budget_blocks(title: str, unit: str, tables: dict, note: str) -> list[tuple]:
    if not tables:
        return []
    families = list(next(iter(tables.values()))["methods"])
    method_rows, pair_rows = [], []
    for budget, table in tables.items():
        cells = []
        for family in families:
            entry = table["methods"][family]
            chosen = f" ({entry['policy']})" if entry and entry.get("policy") else ""
            cells.append(estimate(entry) + chosen)
        method_rows.append([f"{budget} {unit}", *cells])
        for pair in table["pairs"]:
            seeds = pair["seeds_to_detect_observed"]
            pair_rows.append(
                [
                    f"{budget} {unit}",
                    f"{pair['first']} − {pair['second']}",
                    signed_interval(pair["difference"]),
                    pair["verdict"],
                    number(pair["detectable_difference"]),
                    "" if seeds is None else (f"> {seeds - 1}" if seeds >= 1000 else str(seeds)),
                ]
            )
    return [
        ("h2", title),
        ("table", ["budget", *families], method_rows),
        (
            "table",
            ["budget", "pair", "difference [95% CI]", "verdict", "detectable with these seeds", "seeds for observed"],
            pair_rows,
        ),
    ] + ([("p", note)] if note else [])


def condition_blocks(label: str, summary: dict, plots: list[str], gold: str) -> list[tuple]:
    n = len(summary["replicates"])
    prefix = "" if label == "all" else f"{label}: "
    slug = plot_slug(label)
    blocks: list[tuple] = [("p", f"**{prefix}In words.** {summary['summary']}")]
    if f"frontiers{slug}.png" in plots:
        blocks.append(
            ("image", f"frontiers{slug}.png", f"{prefix}gold vs KL per method, mean and 95% t interval over {n} seeds.")
        )
    blocks += budget_blocks(
        f"{prefix}Verdict at KL budgets",
        "nats",
        summary["by_kl"],
        "Each method's gold at the budget is read on each seed's frontier (its policies' (KL, gold) points and the "
        "reference at KL 0), interpolated linearly along KL, never extrapolated: a method whose largest KL on a "
        "seed is below the budget has no value there. Differences are paired by seed (a seed shares samples, "
        "labels and reward model across methods); 95% Student's t intervals over seeds; a verdict names a "
        "winner only where the interval excludes zero. Intervals are per comparison, not corrected for the "
        "number of comparisons in the table. Detectable: the difference these seeds find with 80% power; "
        "seeds for observed: how many would find the observed difference. Best-of-N is placed at its KL bound, "
        "an upper bound on its KL.",
    )
    blocks += budget_blocks(
        f"{prefix}Verdict at equal training compute",
        "generations",
        summary["by_compute"],
        "At each budget (training generations: the preference samples plus a method's own rollouts), each "
        "method is represented by its policy with the highest mean gold among those that cost at most the "
        "budget, chosen on these same seeds (so slightly optimistic for methods with many settings). Best-of-N "
        "spends its N generations per answer instead, at evaluation time.",
    )
    if f"compute{slug}.png" in plots:
        blocks.append(("image", f"compute{slug}.png", f"{prefix}gold vs training generations and seconds."))
    blocks += overoptimization_blocks(prefix, summary)
    if f"overoptimization{slug}.png" in plots:
        blocks.append(("image", f"overoptimization{slug}.png", f"{prefix}gold gain vs √KL with fitted curves."))
    blocks += policy_blocks(prefix, summary)
    power = summary["power"]
    within = power["median_detectable_difference_within_a_run"]
    blocks.append(
        (
            "p",
            f"**{prefix}Power.** Between methods, over {n} seeds: "
            + ", ".join(
                f"{number(value)} at {budget} nats"
                for budget, value in power["median_detectable_difference_by_kl"].items()
                if value is not None
            )
            + " (median over pairs of the smallest difference found with 80% power at the 5% level)."
            + (
                f" Within one run, against its reference over {power['prompts']} held-out prompts: {number(within)}"
                " (each run's report sizes its prompts)."
                if within is not None
                else ""
            ),
        )
    )
    return blocks


def overoptimization_blocks(prefix: str, summary: dict) -> list[tuple]:
    fit_rows, flag_rows = [], []
    for family, entry in summary["overoptimization"].items():
        fit = entry["fit"]
        passed = entry["passed_fitted_peak"]
        fit_rows.append(
            [family, "too few points (fewer than 3 distinct KL)", "", "", "", number(entry["largest_mean_kl"]), ""]
            if fit is None
            else [
                family,
                "d(α − βd)" if fit["form"] == "best_of_n" else "d(α − β ln d)",
                number(fit["alpha"]),
                number(fit["beta"]),
                "none (β ≤ 0: still rising)" if fit["peak_kl"] is None else number(fit["peak_kl"]),
                number(entry["largest_mean_kl"]),
                "n/a" if passed is None else ("yes" if passed else "no"),
            ]
        )
        for policy, flag in entry["flags"].items():
            flag_rows.append([policy, flag["state"], flag["peak"], flag["evidence"]])
    return [
        ("h2", f"{prefix}Over-optimization"),
        ("table", ["method", "form", "α", "β", "fitted peak KL", "largest mean KL", "trained past it"], fit_rows),
        ("table", ["policy", "flag", "peak on its way", "evidence (over seeds, 95%)"], flag_rows),
        (
            "p",
            "Gao et al. (2022)'s forms, least squares on every seed's points, d = √KL, gain = gold − the seed's "
            "reference gold. The flag needs evidence: over-optimized only where gold is significantly below the "
            "best-gold point on its way (the reference or a setting of the same method at lower KL) while the "
            "learned reward is significantly above it; did not move: neither KL nor the learned reward rose "
            "significantly; inconclusive: too few seeds, or gold neither rose nor fell significantly. A fitted "
            'peak is the curve\'s, drawn through few points: "trained past it" alone is not evidence of '
            "over-optimization; the flags are.",
        ),
    ]


def policy_blocks(prefix: str, summary: dict) -> list[tuple]:
    rows = []
    for family, entry in summary["families"].items():
        for point in entry["points"]:
            rows.append(
                [
                    family,
                    point["policy"],
                    "" if point["value"] is None else str(point["value"]),
                    estimate(point["kl"]),
                    estimate(point["gold"]),
                    signed_interval(point["gold_gain"]),
                    signed_interval(point["learned_gain"]),
                    number(point["training_generations"]["mean"], 0),
                    number(point["training_seconds"]["mean"], 1),
                ]
            )
    return [
        ("h2", f"{prefix}Every policy, over seeds"),
        (
            "table",
            ["method", "policy", "knob value", "KL", "gold", "gold gain", "learned gain", "generations", "seconds"],
            rows,
        ),
        (
            "p",
            f"Reference gold {estimate(summary['reference']['gold'])}; reward-model held-out accuracy "
            f"{estimate(summary['reward_model_heldout_accuracy'])}. Gains are paired by seed over the reference.",
        ),
    ]


def plot_slug(label: str) -> str:
    return "" if label == "all" else "_" + re.sub(r"[^A-Za-z0-9.]+", "_", label)


def write_study_report(study_dir: Path) -> dict:
    """(Re)build the study's metrics.json, plots/*.png, report.md and report.html from its runs."""
    import os

    metrics = summarise_study(study_dir)
    staging = study_dir / ".plots.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    made = []
    for label, summary in metrics["conditions"].items():
        slug, shown = plot_slug(label), "all runs" if label == "all" else label
        study_plots.frontiers(summary, shown, staging / f"frontiers{slug}.png", metrics["gold_labeler"])
        study_plots.compute(summary, shown, staging / f"compute{slug}.png", metrics["gold_labeler"])
        study_plots.overoptimization(summary, shown, staging / f"overoptimization{slug}.png")
        made += [f"frontiers{slug}.png", f"compute{slug}.png", f"overoptimization{slug}.png"]
    shutil.rmtree(study_dir / "plots", ignore_errors=True)
    os.replace(staging, study_dir / "plots")
    condition = metrics["condition"]
    blocks: list[tuple] = [
        ("h1", f"Study `{metrics['name']}`"),
        (
            "p",
            f"Seeds {metrics['seeds']}"
            + (f"; condition {condition['key']} in {condition['values']}" if condition else "")
            + f". Training labeler: `{metrics['labeler']}`. Gold judge: `{metrics['gold_labeler']}`. Each seed is a "
            "whole run (its own samples, labels, reward model and policies), so intervals over seeds include "
            "the randomness of data and training; every method of a seed shares that seed's data.",
        ),
    ]
    for label, summary in metrics["conditions"].items():
        if label != "all":
            blocks.append(("h1", f"Condition {label}"))
        blocks += condition_blocks(label, summary, made, metrics["gold_labeler"])
    blocks += [("h2", "Runs"), ("list", [f"{run}/report.md" for run in metrics["runs"]])]
    publish(study_dir, metrics, blocks)
    return metrics

"""The study's report.md and report.html (and metrics.json, plots/), built from reporting/study.py's summary."""

import re
import shutil
from pathlib import Path

from ..errors import RecipeError
from . import study_plots
from .blocks import number, publish, signed_interval
from .overoptimization import FORMS, MIN_KL_MOVEMENT
from .run_files import read_study_plan
from .study import MOST_REPLICATES, UNITS, finished_runs, summarise_study


def estimate(entry: dict | None) -> str:
    """0.512 [0.430, 0.594] from an Interval's dict, with "(n 2/3)" when it rests on n of a table's replicates;
    "not reached" for None."""
    if entry is None:
        return "not reached"
    seeds = f" (n {entry['n']}/{entry['of']})" if "of" in entry else ""
    if entry["low"] is None:
        return f"{entry['mean']:.3f} (1 replicate, no interval){seeds}"
    return f"{entry['mean']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]{seeds}"


def with_interval(entry: dict | None, digits: int = 3) -> str:
    """value [low, high] of a {"value", "low", "high"} dict; "" for None; a missing bound reads "beyond"."""
    if entry is None:
        return ""

    def shown(value):
        return "beyond" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))

    return f"{shown(entry['value'])} [{shown(entry['low'])}, {shown(entry['high'])}]"


def pair_cells(pair: dict) -> list[str]:
    """A verdict table's pair as cells: the pair, its raw difference with n, its raw p, its Holm verdict."""
    return [
        f"{pair['first']} − {pair['second']}",
        signed_interval(pair["difference"]) + f" (n {pair['difference']['n']})",
        "" if pair["p"] is None else f"{pair['p']:.3g}",
        pair["verdict"],
    ]


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
            pair_rows.append([f"{budget} {unit}", *pair_cells(pair), with_interval(pair["detectable_difference"])])
    return [
        ("h2", title),
        ("table", ["budget", *families], method_rows),
        (
            "table",
            ["budget", "pair", "difference [95% CI, raw]", "p (raw)", "verdict (Holm, 5% per table)", "detectable"],
            pair_rows,
        ),
    ] + ([("p", note)] if note else [])


def condition_blocks(label: str, summary: dict, plots: list[str], gold: str) -> list[tuple]:
    n, unit = len(summary["replicates"]), summary["unit"]
    prefix = "" if label == "all" else f"{label}: "
    slug = plot_slug(label)
    blocks: list[tuple] = [("p", f"**{prefix}In words.** {summary['summary']}")]
    if f"frontiers{slug}.png" in plots:
        blocks.append(
            (
                "image",
                f"frontiers{slug}.png",
                f"{prefix}gold vs KL per method, mean and 95% t interval over {n} {unit}.",
            )
        )
    blocks += budget_blocks(f"{prefix}Verdict at KL budgets", "nats", summary["by_kl"], kl_note(unit))
    blocks += budget_blocks(
        f"{prefix}Verdict at equal compute", "generations", summary["by_compute"], compute_note(unit)
    )
    if f"compute{slug}.png" in plots:
        blocks.append(("image", f"compute{slug}.png", f"{prefix}gold vs generations and training seconds."))
    blocks += overoptimization_blocks(prefix, summary)
    if f"overoptimization{slug}.png" in plots:
        blocks.append(("image", f"overoptimization{slug}.png", f"{prefix}gold gain vs √KL with fitted curves."))
    blocks += policy_blocks(prefix, summary)
    blocks.append(("p", power_text(prefix, summary)))
    return blocks


def kl_note(unit: str) -> str:
    return (
        f"Each method's gold at the budget is read on each of the {unit}' frontiers (its policies' (KL, gold) points "
        "and the reference at KL 0) between the two points that bracket the budget, along Gao et al.'s curve "
        "through them in √KL (a read assumes that shape between points far apart: see each method's fit below), "
        f"never extrapolated; a cell's mean is over the n {unit} that reach the budget, of all of them (those that "
        f"go further may be the stronger ones). Differences are paired over the {unit} both methods reach; the "
        "interval and p are each pair's own (95% Student's t, raw); the verdict is Holm-adjusted over the "
        'table\'s pairs on 3 or more replicates, for a 5% chance of any false "beats" per table (measured on '
        "simulated null studies: docs/method.md). Detectable: the difference these replicates find with 80% "
        "power (exact, noncentral t) at 5%/m, the level of Holm's first step over the table's m tested "
        "comparisons (so the Holm verdict has at least that power), and in brackets what it may be given that "
        "its SD is estimated (χ², 95%). Best-of-N is placed at its KL bound, an upper bound on its KL."
    )


def compute_note(unit: str) -> str:
    return (
        "Generations count training and answering: the preference samples, a method's own rollouts, and one "
        "generation per evaluated answer (N for best-of-N, which samples N to pick one). At each budget each "
        f"method stands for its setting with the highest mean gold over the {unit} among those within the "
        "budget. Where that was a choice among several settings, it was made on the gold it is judged on, "
        "which favours methods with more settings: that budget is exploratory, and draws no verdict. A budget "
        "where every method has one setting is a verdict, Holm-adjusted as above."
    )


def power_text(prefix: str, summary: dict) -> str:
    power, unit = summary["power"], summary["unit"]
    parts = []
    for budget, value in power["by_kl"].items():
        if value and value["detectable"]:
            needed = value["needed"]
            most = needed["high"] >= MOST_REPLICATES
            parts.append(
                f"at {budget} nats {with_interval(value['detectable'])}; {needed['value']} {unit} "
                f"[{needed['low']}, {f'more than {MOST_REPLICATES}' if most else needed['high']}]"
                f" to detect {number(power['detect_gold_difference'])}"
            )
    within = power["median_detectable_difference_within_a_run"]
    return (
        f"**{prefix}Power.** Between methods, over {power['replicates']} {unit} (from the pair with the median SD "
        "of each table; 80% power, exact, at 5%/m for the table's m Holm-adjusted comparisons; brackets: the SD's "
        "95% χ² interval carried through): "
        + ("; ".join(parts) if parts else "no pair has an SD")
        + f". The difference to detect ({number(power['detect_gold_difference'])} gold): study.detect_gold_difference."
        + (
            f" Within one run, against its reference over {power['prompts']} held-out prompts: {number(within)}"
            " (each run's report sizes its prompts)."
            if within is not None
            else ""
        )
    )


def overoptimization_blocks(prefix: str, summary: dict) -> list[tuple]:
    fit_rows, flag_rows = [], []
    for family, entry in summary["overoptimization"].items():
        fit = entry["fit"]
        if fit is None:
            fit_rows.append(
                [family, "too few settings to fit (fewer than 3)", "", "", "", number(entry["largest_mean_kl"])]
            )
        else:
            ci = fit["intervals"] or {}
            fit_rows.append(
                [
                    family,
                    FORMS[fit["form"]],
                    number(fit["alpha"]) + bracket(ci.get("alpha")),
                    number(fit["beta"]) + bracket(ci.get("beta")),
                    peak_text(fit),
                    number(entry["largest_mean_kl"]),
                ]
            )
        for policy, flag in entry["flags"].items():
            flag_rows.append([policy, flag["state"], flag["compared_with"], flag["evidence"]])
    return [
        ("h2", f"{prefix}Over-optimization"),
        ("table", ["method", "form", "α", "β", "fitted peak KL [95%]", "largest mean KL"], fit_rows),
        ("table", ["policy", "flag", "compared with", "evidence"], flag_rows),
        (
            "p",
            "Gao et al. (2022)'s forms, least squares on every replicate's points, d = √KL, gain = gold − the "
            "replicate's reference gold; intervals: 95% percentiles over 1,000 bootstrap resamples of whole "
            "replicates (3 or more; rough with 3, which give at most 10 distinct resamples). A peak past the "
            'largest KL measured reads "beyond": the data say nothing about where. The flag compares each policy '
            "with a point named before gold is read: the setting before it by mean KL (the reference for the "
            "first). Over-optimized only where its KL rose past that point significantly and by at least "
            f"{MIN_KL_MOVEMENT} nats on average, gold is significantly below it and the learned reward "
            "significantly above it, each one-sided at 5% divided by the method's number of settings "
            "(so at most a 5% chance of any false flag per method); did not move: neither its KL (so) nor its "
            "learned reward rose from the reference (never flagged); inconclusive: too few replicates, or gold "
            "neither rose nor fell significantly.",
        ),
    ]


def bracket(bounds: list | None) -> str:
    return "" if not bounds else f" [{number(bounds[0])}, {number(bounds[1])}]"


def peak_text(fit: dict) -> str:
    """The fitted peak: a KL, or beyond the data; with its bootstrap interval."""
    shown = (
        number(fit["peak_kl"])
        if fit["peak"] == "within"
        else ("none (β ≤ 0: still rising)" if fit["peak"] == "none" else "beyond the largest KL measured")
    )
    bounds = (fit["intervals"] or {}).get("peak_kl")
    if bounds:
        low, high = ("beyond" if bound is None else number(bound) for bound in bounds)
        shown += f" [{low}, {high}]"
    return shown


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
                    number(point["generations"]["mean"], 0),
                    number(point["training_seconds"]["mean"], 1),
                ]
            )
    return [
        ("h2", f"{prefix}Every policy, over {summary['unit']}"),
        (
            "table",
            ["method", "policy", "knob value", "KL", "gold", "gold gain", "learned gain", "generations", "seconds"],
            rows,
        ),
        (
            "p",
            f"Reference gold {estimate(summary['reference']['gold'])}; reward-model held-out accuracy "
            f"{estimate(summary['reward_model_heldout_accuracy'])}. Gains are paired by replicate over the reference.",
        ),
    ]


def spread_text(metrics: dict) -> str:
    """Which spread every interval of the report is over."""
    if metrics["replicates"] == "training_seeds":
        return (
            f"Training seeds {metrics['training_seeds']} on the data of seed {metrics['seeds'][0]}: every run shares "
            "its samples, labels and reward model, and trains the methods again, so intervals are over the "
            "randomness of training (and evaluation) given these data, not over data or reward model."
        )
    return (
        f"Seeds {metrics['seeds']}: each seed is a whole run (its own samples, labels, reward model and policies), "
        "so intervals over seeds include the randomness of data and training; every method of a seed shares "
        "that seed's data."
    )


def plot_slug(label: str) -> str:
    return "" if label == "all" else "_" + re.sub(r"[^A-Za-z0-9.]+", "_", label)


def write_study_report(study_dir: Path) -> dict:
    """(Re)build the study's metrics.json, plots/*.png, report.md and report.html from its finished runs. A run
    that did not finish (or whose metrics.json cannot be read) is left out: the report of the others is
    written, then a RecipeError names each run left out; with no finished run, nothing is written."""
    plan = read_study_plan(study_dir)
    runs, problems = finished_runs(study_dir, plan)
    left_out = [f"left out of the study's report: {line}" for line in problems]
    if not runs:
        raise RecipeError(left_out + [f"{study_dir}: no run of the study has finished, so there is nothing to report."])
    metrics = summarise_study(plan, runs)
    staging = study_dir / ".plots.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        made = draw_study_plots(metrics, staging)
        publish(study_dir, metrics, study_blocks(metrics, made, left_out), staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone once published; what a failure left otherwise
    if left_out:
        raise RecipeError(left_out)
    return metrics


def draw_study_plots(metrics: dict, staging: Path) -> list[str]:
    """Each condition's frontiers, compute and over-optimization plots, drawn into `staging`; their names."""
    made = []
    for label, summary in metrics["conditions"].items():
        slug, shown = plot_slug(label), "all runs" if label == "all" else label
        study_plots.frontiers(summary, shown, staging / f"frontiers{slug}.png", metrics["gold_labeler"])
        study_plots.compute(summary, shown, staging / f"compute{slug}.png", metrics["gold_labeler"])
        study_plots.overoptimization(summary, shown, staging / f"overoptimization{slug}.png")
        made += [f"frontiers{slug}.png", f"compute{slug}.png", f"overoptimization{slug}.png"]
    return made


def study_blocks(metrics: dict, made: list[str], left_out: list[str]) -> list[tuple]:
    condition = metrics["condition"]
    blocks: list[tuple] = [
        ("h1", f"Study `{metrics['name']}`"),
        (
            "p",
            spread_text(metrics)
            + (f" Condition {condition['key']} in {condition['values']}." if condition else "")
            + f" Training labeler: `{metrics['labeler']}`. Gold judge: `{metrics['gold_labeler']}`.",
        ),
    ]
    for label, summary in metrics["conditions"].items():
        if label != "all":
            blocks.append(("h1", f"Condition {label}"))
        blocks += condition_blocks(label, summary, made, metrics["gold_labeler"])
    blocks += across_blocks(metrics)
    blocks += [("h2", "Runs"), ("list", [f"{run}/report.md" for run in metrics["runs"]] + left_out)]
    return blocks


def across_blocks(metrics: dict) -> list[tuple]:
    """The condition's values compared, each against the first: per family, its policies' gold and its gold at
    each KL budget, with the paired differences and their Holm-adjusted verdicts."""
    across = metrics.get("across_conditions")
    if not across:
        return []
    key, baseline = metrics["condition"]["key"], across["baseline"]
    unit = UNITS.get(metrics.get("replicates", "seeds"), "seeds")
    blocks: list[tuple] = [
        ("h1", f"The values of {key} compared"),
        (
            "p",
            f"Each value of {key} against the first, {baseline}, paired by {unit[:-1]} (a {unit[:-1]}'s runs share "
            "whatever the condition leaves alone); per policy its mean gold, per KL budget each run's frontier read "
            "there. Each row is a table of its own: Holm over its comparisons at 5%.",
        ),
    ]
    for family, rows in across["tables"].items():
        labels = list(next(iter(rows.values()))["methods"])
        value_rows, pair_rows = [], []
        for row, table in rows.items():
            value_rows.append([row, *(estimate(table["methods"][label]) for label in labels)])
            pair_rows += [[row, *pair_cells(pair)] for pair in table["pairs"]]
        blocks += [
            ("h2", f"{family}: gold under each value of {key}"),
            ("table", ["policy or budget", *labels], value_rows),
            ("table", ["policy or budget", "pair", "difference [95% CI, raw]", "p (raw)", "verdict (Holm)"], pair_rows),
        ]
    return blocks

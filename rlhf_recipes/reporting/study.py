"""A study's numbers (metrics.json of the study directory), from its runs' metrics.json only.

Replicates are the unit: every number is first read per run (a seed: its own samples, labels, reward model
and policies; or a training seed: the same data and reward model, the methods trained again), then
summarised over replicates (reporting/statistics.py). A method is a *family* of policies, one per value of
its grid knob (config/study.py), best-of-N one more (its N); its frontier on one replicate is its policies'
(KL, gold) points with the reference at (0, its gold). Every table's verdicts are Holm-adjusted; each
over-optimization flag compares a policy with a point named in advance. `rlhf compare` summarises the runs
it is given the same way, each run a replicate.
"""

import itertools
import math
from pathlib import Path

from ..config.study import Study
from ..errors import RecipeError
from .overoptimization import Comparison, fit_overoptimization, overoptimization_state
from .run_files import read_run_metrics, rerun
from .statistics import (
    ALPHA,
    Interval,
    at_budget,
    detectable_with_interval,
    holm,
    paired_difference,
    t_interval,
    units_needed_with_interval,
    verdict,
)

SCHEMA_VERSION = 2  # 1: linear-in-KL reads, unadjusted verdicts, observed power; 2: √KL, Holm, fixed comparisons
BEST_OF_N = "best_of_n"
COMPUTE_BUDGETS = 4  # at most this many compute budgets in the verdict table
MOST_REPLICATES = 1000  # "replicates needed" is reported as more than this beyond it
FIT_SETTINGS = 3  # a Gao et al. fit needs a family with this many settings: two coefficients and a check
VERDICT_REPLICATES = 3  # fewer decide nothing: a t test on 1 degree of freedom hangs on its normality
DETECT_GOLD_DIFFERENCE = Study.model_fields["detect_gold_difference"].default  # unless the study sets it
UNITS = {"seeds": "seeds", "training_seeds": "training seeds", "runs": "runs"}


def finished_runs(study_dir: Path, plan: dict) -> tuple[list[tuple[dict, dict]], list[str]]:
    """The study's runs (each its entry of study.json and its metrics.json) whose metrics.json holds every
    policy of the study, and one line for each other run: it did not finish, or its metrics.json is damaged
    or from an older version."""
    finished, problems = [], []
    policies = [policy for entry in plan["families"].values() for policy in entry["policies"]]
    for run in plan["runs"]:
        path = study_dir / run["dir"] / "metrics.json"
        try:
            metrics = read_run_metrics(path)
        except RecipeError as error:
            problems += error.problems
            continue
        missing = [policy for policy in policies if policy not in metrics["policies"]]
        if missing:
            problems.append(
                f"{path}: has no policy {', '.join(missing)}, which the study trains. "
                f"Fix: run the study again: {rerun(study_dir)} (finished runs are reused)."
            )
        else:
            finished.append((run, metrics))
    return finished, problems


def summarise_study(plan: dict, runs: list[tuple[dict, dict]]) -> dict:
    """Every number of the study's report, over `runs` (each its entry of study.json and its metrics.json)."""
    groups: dict[str, list[tuple[str, dict]]] = {}
    replicates = plan.get("replicates", "seeds")
    for run, metrics in runs:
        condition = plan["condition"]
        label = "all" if condition is None else f"{condition['key']}={run['condition']}"
        seed = run.get("training_seed") if replicates == "training_seeds" else run["seed"]
        groups.setdefault(label, []).append((f"{UNITS[replicates][:-1]} {seed}", metrics))
    first = next(iter(groups.values()))[0][1]
    target = plan.get("detect_gold_difference") or DETECT_GOLD_DIFFERENCE
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "study",
        "name": plan["name"],
        "gold_labeler": first["gold_labeler"],
        "labeler": first["labeler"],
        "seeds": plan["seeds"],
        "training_seeds": plan.get("training_seeds"),
        "replicates": replicates,
        "condition": plan["condition"],
        "kl_budgets": plan["kl_budgets"],
        "runs": [run["dir"] for run, _ in runs],
        "conditions": {
            label: compare_replicates(runs, plan["families"], plan["kl_budgets"], replicates, target)
            for label, runs in groups.items()
        },
        "across_conditions": across_conditions(groups, plan["families"], plan["kl_budgets"], UNITS[replicates]),
    }


def across_conditions(
    groups: dict[str, list[tuple[str, dict]]], families: dict[str, dict], budgets: list[float], unit: str
) -> dict | None:
    """Each value of the condition against the first (the baseline), for every policy (its gold) and every
    family at each KL budget (its frontier's gold there), paired by replicate: a seed's runs under two values
    share whatever the condition leaves alone. Each row is a table of its own, Holm-adjusted over its
    comparisons, as every verdict table is. None without a condition of two or more values."""
    if len(groups) < 2:
        return None
    every_run = [run for runs in groups.values() for run in runs]
    families = families | best_of_n_family(every_run)
    values = {  # by the value alone ("min", not "reward_model.ensemble.aggregate=min"): the section names the key
        label.partition("=")[2]: {replicate: replicate_points(metrics, families) for replicate, metrics in runs}
        for label, runs in groups.items()
    }
    baseline = next(iter(values))
    tables = {}
    for family, entry in families.items():
        rows = {
            policy: budget_table(
                {
                    label: {r: points[policy]["gold"] for r, points in by_replicate.items()}
                    for label, by_replicate in values.items()
                },
                unit,
                baseline=baseline,
            )
            for policy in entry["policies"]
        }
        for budget in budgets:
            rows[f"KL {budget:g}"] = budget_table(
                {
                    label: {
                        r: at_budget(frontier(points, entry), budget, form(entry)) for r, points in by_replicate.items()
                    }
                    for label, by_replicate in values.items()
                },
                unit,
                baseline=baseline,
            )
        tables[family] = rows
    return {"baseline": baseline, "tables": tables}


def compare_replicates(
    runs: list[tuple[str, dict]],
    families: dict[str, dict],
    budgets: list[float],
    replicates: str = "seeds",
    detect: float = DETECT_GOLD_DIFFERENCE,
) -> dict:
    """Methods compared over replicate runs, each given as (label, its metrics.json); `replicates` names
    what they are ("seeds", "training_seeds" or "runs"); `detect`: the gold difference power is sized for."""
    families = families | best_of_n_family(runs)
    values = {label: replicate_points(metrics, families) for label, metrics in runs}
    unit = UNITS[replicates]
    summary = {
        "replicates": list(values),
        "unit": unit,
        "reference": {"gold": t_interval(series(values, "reference", "gold")).as_dict()},
        "reward_model_heldout_accuracy": t_interval(
            [metrics["reward_model"]["heldout_accuracy"] for _, metrics in runs]
        ).as_dict(),
        "families": {family: entry | {"points": family_points(values, entry)} for family, entry in families.items()},
    }
    summary["overoptimization"] = {family: overoptimization(values, entry) for family, entry in families.items()}
    summary["by_kl"] = {
        f"{budget:g}": budget_table(
            {
                family: {
                    label: at_budget(frontier(points, entry), budget, form(entry)) for label, points in values.items()
                }
                for family, entry in families.items()
            },
            unit,
        )
        for budget in budgets
    }
    summary["by_compute"] = compute_tables(summary["families"], values, unit)
    summary["power"] = power_summary(summary, runs, detect)
    summary["summary"] = plain_summary(summary)
    return summary


def series(values: dict[str, dict], policy: str, key: str) -> list[float]:
    """One policy's `key` on every replicate, in replicate order."""
    return [points[policy][key] for points in values.values()]


def best_of_n_family(runs: list[tuple[str, dict]]) -> dict:
    """Best-of-N as one more method, its knob N, for the N that every run has."""
    shared = set.intersection(*(set(metrics["best_of_n"]) for _, metrics in runs))
    if not shared:
        return {}
    policies = {f"best_of_{n}": int(n) for n in sorted(shared, key=int)}
    return {BEST_OF_N: {"method": BEST_OF_N, "knob": "N", "policies": policies}}


def replicate_points(metrics: dict, families: dict) -> dict[str, dict]:
    """Per policy of one run: gold, KL (best-of-N: its bound), learned reward, generations and seconds.
    Generations count training and answering: the training generations plus, for each evaluated answer,
    one (a trained policy) or N (best-of-N), so best-of-N pays for the samples it picks from."""
    costs = metrics["costs"]
    answers = metrics["policies"]["reference"].get("n", 1)

    def point(result: dict, kl: float, cost: dict, per_answer: int) -> dict:
        return {
            "gold": result["gold_mean"],
            "kl": kl,
            "learned": result["reward_model_mean"],
            "generations": cost["training_generations"] + per_answer * answers,
            "seconds": cost["training_seconds"],
        }

    points = {"reference": point(metrics["policies"]["reference"], 0.0, costs["reference"], 1)}
    for entry in families.values():
        for policy in entry["policies"]:
            if entry["method"] == BEST_OF_N:
                n = policy.removeprefix("best_of_")
                result = metrics["best_of_n"][n]
                points[policy] = point(result, result["kl_bound"], costs[policy], int(n))
            elif policy in metrics["policies"]:
                result = metrics["policies"][policy]
                points[policy] = point(result, result["kl_mean"], costs[policy], 1)
            else:
                raise ValueError(f"run {metrics['name']} (seed {metrics['seed']}) has no policy {policy}")
    return points


def family_points(values: dict[str, dict], entry: dict) -> list[dict]:
    """Each policy of a family over replicates: KL, gold, gains over the reference (paired), compute."""
    reference_gold, reference_learned = series(values, "reference", "gold"), series(values, "reference", "learned")
    points = []
    for policy, value in entry["policies"].items():
        gold, learned = series(values, policy, "gold"), series(values, policy, "learned")
        points.append(
            {
                "policy": policy,
                "value": value,
                "kl": t_interval(series(values, policy, "kl")).as_dict(),
                "gold": t_interval(gold).as_dict(),
                "gold_gain": paired_difference(gold, reference_gold).as_dict(),
                "learned_gain": paired_difference(learned, reference_learned).as_dict(),
                "generations": t_interval(series(values, policy, "generations")).as_dict(),
                "training_seconds": t_interval(series(values, policy, "seconds")).as_dict(),
            }
        )
    return points


def form(entry: dict) -> str:
    """The shape of a family's gold-vs-KL curve (Gao et al.): "best_of_n" or "rl"."""
    return "best_of_n" if entry["method"] == BEST_OF_N else "rl"


def frontier(points: dict[str, dict], entry: dict) -> list[tuple[float, float]]:
    """A family's (KL, gold) points on one replicate, with the reference at (0, its gold) unless the family is
    best-of-N with a point of its own at KL 0 (best-of-1, which is the reference's sampling)."""
    own = [(points[policy]["kl"], points[policy]["gold"]) for policy in entry["policies"]]
    if entry["method"] != BEST_OF_N or not any(kl <= 0 for kl, _ in own):
        own.append((0.0, points["reference"]["gold"]))  # a trained policy's KL estimate may read ≤ 0 by chance
    return own


def budget_table(
    by_family: dict[str, dict[str, float | None]], unit: str, chosen: dict | None = None, baseline: str | None = None
) -> dict:
    """Each family's gold at one budget over the replicates that reach it (`n` of `of`), and each pair's
    (with `baseline`: each other family against it) difference paired over the replicates both reach, with
    Holm's correction over the table's pairs that
    rest on VERDICT_REPLICATES or more (at 1 degree of freedom the t test's extreme tail, where Holm
    decides, depends on normality: measured anticonservative in tests/test_calibration.py);
    `chosen`: what stands for each family at this budget."""
    methods = {}
    for family, by_label in by_family.items():
        reached = [value for value in by_label.values() if value is not None]
        entry = t_interval(reached).as_dict() | {"of": len(by_label)} if reached else None
        if entry is not None and chosen:
            entry["policy"] = chosen[family]
        methods[family] = entry
    differences = []
    compared = (
        itertools.combinations(by_family, 2)
        if baseline is None
        else [(family, baseline) for family in by_family if family != baseline]
    )
    for first, second in compared:
        shared = [label for label, value in by_family[first].items() if value is not None]
        shared = [label for label in shared if by_family[second].get(label) is not None]
        if shared:
            differences.append(
                (
                    first,
                    second,
                    paired_difference(
                        [by_family[first][label] for label in shared], [by_family[second][label] for label in shared]
                    ),
                )
            )
    tested = [d.p_value() if d.n >= VERDICT_REPLICATES else None for *_, d in differences]
    decided = holm(tested)
    m = sum(p is not None and not math.isnan(p) for p in tested)  # Holm's m: the comparisons tested
    pairs = [
        pair_entry(first, second, difference, rejected, unit, 1 - ALPHA / max(m, 1))
        for (first, second, difference), rejected in zip(differences, decided, strict=True)
    ]
    return {"methods": methods, "pairs": pairs, "comparisons": m}


def pair_entry(first: str, second: str, difference: Interval, decided: bool, unit: str, level: float) -> dict:
    """A pair's raw difference and p-value, its Holm-adjusted verdict in words, and the difference its
    replicates could detect at `level` (1 − 5%/m: the first step of Holm over the table's m comparisons, so
    at least the power stated; with the interval that estimating the SD gives it)."""
    return {
        "first": first,
        "second": second,
        "difference": difference.as_dict(),
        "p": difference.p_value(),
        "decided": decided,
        "verdict": verdict(first, second, difference, decided, unit),
        "detectable_difference": detectable_with_interval(difference.sd, difference.n, level),
    }


def compute_tables(families: dict[str, dict], values: dict[str, dict], unit: str) -> dict:
    """The comparison at equal compute (generations, training and answering): at each budget, each family is
    represented by its policy with the highest mean gold among those costing at most the budget. Where that
    choice was made among two or more settings, it was made on the gold it is then judged on, which favours
    the families with more settings: such a table is exploratory and decides nothing (leave-one-replicate-out
    choice, the alternative, was measured anticonservative: 7.2% false "beats" per table in
    tests/test_calibration.py's null studies). A table where every family has one affordable setting is a
    verdict, Holm-adjusted like the others."""
    costs = sorted({round(point["generations"]["mean"]) for e in families.values() for point in e["points"]})
    costs = [cost for cost in costs if cost > 0]
    if len(costs) > COMPUTE_BUDGETS:
        step = (len(costs) - 1) / (COMPUTE_BUDGETS - 1)
        costs = [costs[round(i * step)] for i in range(COMPUTE_BUDGETS)]
    tables = {}
    for budget in costs:
        chosen, selected_among = {}, {}
        for family, entry in families.items():
            affordable = [p for p in entry["points"] if p["generations"]["mean"] <= budget + 0.5]
            chosen[family] = max(affordable, key=lambda p: p["gold"]["mean"])["policy"] if affordable else None
            selected_among[family] = len(affordable)
        by_family = {
            family: {label: (points[policy]["gold"] if policy else None) for label, points in values.items()}
            for family, policy in chosen.items()
        }
        table = budget_table(by_family, unit, chosen)
        exploratory = [family for family, count in selected_among.items() if count > 1]
        for pair in table["pairs"] if exploratory else []:
            pair["decided"] = False
            pair["verdict"] = f"exploratory: {', '.join(exploratory)} chosen among settings on this gold"
        tables[str(budget)] = table | {"exploratory": exploratory}
    return tables


def overoptimization(values: dict[str, dict], entry: dict) -> dict:
    """Gao et al.'s form fitted to a family's gold gains over all replicates (with bootstrap intervals), and
    each policy's flag: against the family's next lower setting by mean KL (the reference for the lowest),
    a comparison named without looking at gold, corrected for the family's number of comparisons."""
    labels = list(values)
    reference_gold = series(values, "reference", "gold")
    fit = (
        None
        if len(entry["policies"]) < FIT_SETTINGS
        else fit_overoptimization(
            [
                [
                    (values[label][p]["kl"], values[label][p]["gold"] - values[label]["reference"]["gold"])
                    for p in entry["policies"]
                ]
                for label in labels
            ],
            form(entry),
        )
    )
    mean_kl = {policy: sum(series(values, policy, "kl")) / len(labels) for policy in entry["policies"]}
    by_kl = sorted(entry["policies"], key=lambda policy: mean_kl[policy])
    flags = {}
    for index, policy in enumerate(by_kl):
        point = "reference" if index == 0 else by_kl[index - 1]
        comparison = Comparison(
            point,
            *(
                paired_difference(series(values, policy, key), series(values, point, key))
                for key in ("kl", "learned", "gold")
            ),
        )
        state, evidence = overoptimization_state(
            t_interval(series(values, policy, "kl")),
            paired_difference(series(values, policy, "learned"), series(values, "reference", "learned")),
            paired_difference(series(values, policy, "gold"), reference_gold),
            [comparison],
            tests=len(by_kl),
        )
        flags[policy] = {"state": state, "evidence": evidence, "compared_with": point}
    return {"fit": fit, "largest_mean_kl": max(mean_kl.values()), "flags": flags}


def power_summary(summary: dict, runs: list[tuple[str, dict]], detect: float) -> dict:
    """What the replicates could detect, per KL budget, from the pair whose SD is the median of the table's:
    the detectable difference (80% power, exact, at 1 − 5%/m for the table's m Holm-adjusted comparisons)
    with its interval from the SD's χ² interval, and how many replicates detect `detect` there; and each
    run's own statement over its held-out prompts."""
    by_budget = {}
    for budget, table in summary["by_kl"].items():
        pairs = sorted(
            (p for p in table["pairs"] if p["difference"]["sd"] is not None), key=lambda p: p["difference"]["sd"]
        )
        if not pairs:
            by_budget[budget] = None
            continue
        middle = pairs[len(pairs) // 2]["difference"]
        level = 1 - ALPHA / max(table["comparisons"], 1)
        by_budget[budget] = {
            "detectable": detectable_with_interval(middle["sd"], middle["n"], level),
            "needed": units_needed_with_interval(detect, middle["sd"], middle["n"], level, most=MOST_REPLICATES),
        }
    within = sorted(
        metrics["power"]["detectable_gold_difference"]
        for _, metrics in runs
        if metrics.get("power") and metrics["power"]["detectable_gold_difference"] is not None
    )
    return {
        "replicates": len(runs),
        "detect_gold_difference": detect,
        "by_kl": by_budget,
        "median_detectable_difference_within_a_run": within[len(within) // 2] if within else None,
        "prompts": runs[0][1].get("power", {}).get("prompts"),
    }


def plain_summary(summary: dict) -> str:
    """One paragraph in words, generated from the tables: a difference is named only where its
    Holm-adjusted test rejects, and every "not distinguishable" says over how many replicates."""
    unit = summary["unit"]
    sentences = [budget_sentence(f"At {b} nats of KL", table, unit) for b, table in summary["by_kl"].items()]
    for budget, table in summary["by_compute"].items():
        sentences.append(budget_sentence(f"At {budget} generations", table, unit))
    if any(table["exploratory"] for table in summary["by_compute"].values()):
        sentences.append(
            "Where a method's best setting within a compute budget was chosen among several on the same gold, "
            "that budget is exploratory and draws no verdict."
        )
    flagged = [
        f"{policy} ({entry['evidence']})"
        for family in summary["overoptimization"].values()
        for policy, entry in family["flags"].items()
        if entry["state"] == "over-optimized"
    ]
    sentences.append(
        "Over-optimized (gold significantly below the setting before it while the learned reward rose past it, "
        "corrected for the comparisons per method): " + ("; ".join(flagged) if flagged else "no policy") + "."
    )
    readable = [
        f"{value['detectable']['value']:.3f} [{value['detectable']['low']:.3f}, {value['detectable']['high']:.3f}] "
        f"at {budget} nats"
        for budget, value in summary["power"]["by_kl"].items()
        if value and value["detectable"]
    ]
    if readable:
        sentences.append(
            f"With these {unit}, gold differences smaller than about {', '.join(readable)} are not reliably "
            "detected (80% power at the tables' Holm-adjusted level; the brackets: what the SDs' uncertainty allows)."
        )
    return " ".join(sentence for sentence in sentences if sentence)


def budget_sentence(where: str, table: dict, unit: str) -> str:
    """One budget's verdicts in words, each with the replicates it rests on."""
    reached = [family for family, entry in table["methods"].items() if entry is not None]
    missing = [family for family, entry in table["methods"].items() if entry is None]
    if len(reached) < 2:
        return f"{where}, fewer than two methods reach it."
    if not table["pairs"]:
        return f"{where}, no replicate reaches it with two methods: nothing to compare."
    if table.get("exploratory"):
        return f"{where}: exploratory only ({', '.join(table['exploratory'])} chosen among settings), no verdict."
    wins = [f"{p['verdict']} by {abs(p['difference']['mean']):.3f}" for p in table["pairs"] if p["decided"]]
    by_n: dict[int, list[str]] = {}
    for p in table["pairs"]:
        if not p["decided"]:
            by_n.setdefault(p["difference"]["n"], []).append(f"{p['first']}–{p['second']}")
    text = f"{where}: " + ("; ".join(wins) if wins else "no method beats another")
    for n, names in sorted(by_n.items(), reverse=True):
        text += f"; not distinguishable with {n} {unit[:-1] if n == 1 else unit}: {', '.join(names)}"
    if table["comparisons"] > 1:
        text += f" (Holm-adjusted over {table['comparisons']} comparisons)"
    if missing:
        text += f" ({', '.join(missing)} {'does' if len(missing) == 1 else 'do'} not reach it)"
    return text + "."

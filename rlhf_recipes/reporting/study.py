"""A study's numbers (metrics.json of the study directory), from its runs' metrics.json only.

Seeds are the unit: every number is first read per run (one seed: its own samples, labels, reward model
and policies), then summarised over seeds (reporting/statistics.py). A method is a *family* of policies,
one per value of its grid knob (config/study.py), best-of-N one more (its N); its frontier on one seed is
its policies' (KL, gold) points with the reference at (0, its gold). `rlhf compare` summarises the runs it
is given the same way, each run a replicate.
"""

import itertools
from pathlib import Path

from .analysis import read_json
from .statistics import (
    Interval,
    at_budget,
    detectable_difference,
    fit_overoptimization,
    overoptimization_state,
    paired_difference,
    t_interval,
    units_needed,
    verdict,
)

SCHEMA_VERSION = 1
BEST_OF_N = "best_of_n"
COMPUTE_BUDGETS = 4  # at most this many training-compute budgets in the verdict table
MOST_SEEDS = 1000  # "seeds to detect" is reported as more than this beyond it


def summarise_study(study_dir: Path) -> dict:
    """Every number of the study's report."""
    plan = read_json(study_dir / "study.json")
    groups: dict[str, list[tuple[str, dict]]] = {}
    for run in plan["runs"]:
        condition = plan["condition"]
        label = "all" if condition is None else f"{condition['key']}={run['condition']}"
        metrics = read_json(study_dir / run["dir"] / "metrics.json")
        groups.setdefault(label, []).append((f"seed {run['seed']}", metrics))
    first = next(iter(groups.values()))[0][1]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "study",
        "name": plan["name"],
        "gold_labeler": first["gold_labeler"],
        "labeler": first["labeler"],
        "seeds": plan["seeds"],
        "condition": plan["condition"],
        "kl_budgets": plan["kl_budgets"],
        "runs": [run["dir"] for run in plan["runs"]],
        "conditions": {
            label: compare_replicates(runs, plan["families"], plan["kl_budgets"]) for label, runs in groups.items()
        },
    }


def compare_replicates(runs: list[tuple[str, dict]], families: dict[str, dict], budgets: list[float]) -> dict:
    """Methods compared over replicate runs (seeds), each given as (label, its metrics.json)."""
    families = families | best_of_n_family(runs)
    values = {label: replicate_points(metrics, families) for label, metrics in runs}
    summary = {
        "replicates": list(values),
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
                family: {label: at_budget(frontier(points, entry), budget) for label, points in values.items()}
                for family, entry in families.items()
            }
        )
        for budget in budgets
    }
    summary["by_compute"] = compute_tables(summary["families"], values)
    summary["power"] = power_summary(summary, runs)
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
    """Per policy of one run: gold, KL (best-of-N: its bound), learned reward, training generations and seconds."""
    costs = metrics["costs"]

    def point(result: dict, kl: float, cost: dict) -> dict:
        return {
            "gold": result["gold_mean"],
            "kl": kl,
            "learned": result["reward_model_mean"],
            "generations": cost["training_generations"],
            "seconds": cost["training_seconds"],
        }

    points = {"reference": point(metrics["policies"]["reference"], 0.0, costs["reference"])}
    for entry in families.values():
        for policy in entry["policies"]:
            if entry["method"] == BEST_OF_N:
                result = metrics["best_of_n"][policy.removeprefix("best_of_")]
                points[policy] = point(result, result["kl_bound"], costs[policy])
            elif policy in metrics["policies"]:
                result = metrics["policies"][policy]
                points[policy] = point(result, result["kl_mean"], costs[policy])
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
                "training_generations": t_interval(series(values, policy, "generations")).as_dict(),
                "training_seconds": t_interval(series(values, policy, "seconds")).as_dict(),
            }
        )
    return points


def frontier(points: dict[str, dict], entry: dict) -> list[tuple[float, float]]:
    """A family's (KL, gold) points on one replicate, with the reference at (0, its gold) unless the family
    has a point of its own at KL ≤ 0 (best-of-1)."""
    own = [(points[policy]["kl"], points[policy]["gold"]) for policy in entry["policies"]]
    if not any(kl <= 0 for kl, _ in own):
        own.append((0.0, points["reference"]["gold"]))
    return own


def budget_table(by_family: dict[str, dict[str, float | None]], chosen: dict[str, str] | None = None) -> dict:
    """Each family's gold at one budget over the replicates that reach it, and each pair's difference paired
    over the replicates both reach; `chosen`: the policy standing for each family at this budget."""
    methods = {}
    for family, by_label in by_family.items():
        reached = [value for value in by_label.values() if value is not None]
        entry = t_interval(reached).as_dict() if reached else None
        if entry is not None and chosen:
            entry["policy"] = chosen[family]
        methods[family] = entry
    pairs = []
    for first, second in itertools.combinations(by_family, 2):
        shared = [label for label, value in by_family[first].items() if value is not None]
        shared = [label for label in shared if by_family[second].get(label) is not None]
        if shared:
            difference = paired_difference(
                [by_family[first][label] for label in shared], [by_family[second][label] for label in shared]
            )
            pairs.append(pair_entry(first, second, difference))
    return {"methods": methods, "pairs": pairs}


def pair_entry(first: str, second: str, difference: Interval) -> dict:
    """A pair's difference, its verdict in words, the difference its replicates could detect, and how many
    replicates would detect the observed difference (when these did not)."""
    detectable = needed = None
    if difference.sd is not None:
        detectable = detectable_difference(difference.sd, difference.n)
        if not difference.excludes_zero():
            needed = units_needed(abs(difference.mean), difference.sd, most=MOST_SEEDS)
    return {
        "first": first,
        "second": second,
        "difference": difference.as_dict(),
        "verdict": verdict(first, second, difference),
        "detectable_difference": detectable,
        "seeds_to_detect_observed": needed,
    }


def compute_tables(families: dict[str, dict], values: dict[str, dict]) -> dict:
    """The verdict at equal training compute (generations): at each budget, each family is represented by
    its best policy (highest mean gold over replicates) among those costing at most the budget."""
    costs = sorted({round(point["training_generations"]["mean"]) for e in families.values() for point in e["points"]})
    costs = [cost for cost in costs if cost > 0]
    if len(costs) > COMPUTE_BUDGETS:
        step = (len(costs) - 1) / (COMPUTE_BUDGETS - 1)
        costs = [costs[round(i * step)] for i in range(COMPUTE_BUDGETS)]
    tables = {}
    for budget in costs:
        chosen = {}
        for family, entry in families.items():
            affordable = [p for p in entry["points"] if p["training_generations"]["mean"] <= budget + 0.5]
            chosen[family] = max(affordable, key=lambda p: p["gold"]["mean"])["policy"] if affordable else None
        by_family = {
            family: {label: (points[policy]["gold"] if policy else None) for label, points in values.items()}
            for family, policy in chosen.items()
        }
        tables[str(budget)] = budget_table(by_family, chosen)
    return tables


def overoptimization(values: dict[str, dict], entry: dict) -> dict:
    """Gao et al.'s form fitted to a family's gold gains over all replicates, and each policy's flag: its
    gains paired over replicates, against the best-gold point on its way (the reference, or a policy of the
    family at lower mean KL)."""
    labels = list(values)
    kls = [values[label][policy]["kl"] for policy in entry["policies"] for label in labels]
    gains = [
        values[label][policy]["gold"] - values[label]["reference"]["gold"]
        for policy in entry["policies"]
        for label in labels
    ]
    fit = fit_overoptimization(kls, gains, "best_of_n" if entry["method"] == BEST_OF_N else "rl")
    mean_kl = {policy: sum(series(values, policy, "kl")) / len(labels) for policy in entry["policies"]}
    mean_gold = {
        policy: sum(series(values, policy, "gold")) / len(labels) for policy in ["reference", *entry["policies"]]
    }
    flags = {}
    for policy in entry["policies"]:
        on_the_way = ["reference"] + [other for other in entry["policies"] if mean_kl[other] < mean_kl[policy]]
        peak = max(on_the_way, key=lambda other: mean_gold[other])
        gold, learned = series(values, policy, "gold"), series(values, policy, "learned")
        state, evidence = overoptimization_state(
            t_interval(series(values, policy, "kl")),
            paired_difference(learned, series(values, "reference", "learned")),
            paired_difference(gold, series(values, "reference", "gold")),
            None
            if mean_gold[peak] <= mean_gold[policy]  # the policy is its own peak
            else (
                paired_difference(gold, series(values, peak, "gold")),
                paired_difference(learned, series(values, peak, "learned")),
            ),
        )
        own_peak = mean_gold[peak] <= mean_gold[policy]
        flags[policy] = {"state": state, "evidence": evidence, "peak": policy if own_peak else peak}
    return {
        "fit": fit.as_dict() if fit else None,
        "largest_mean_kl": max(mean_kl.values()),
        "passed_fitted_peak": None if fit is None or fit.peak_kl is None else bool(max(mean_kl.values()) > fit.peak_kl),
        "flags": flags,
    }


def power_summary(summary: dict, runs: list[tuple[str, dict]]) -> dict:
    """What the replicates could detect: per KL budget, the median over pairs of the smallest detectable
    difference; and what each run's held-out prompts could detect (runs' own power statements)."""
    by_budget = {}
    for budget, table in summary["by_kl"].items():
        detectable = sorted(
            p["detectable_difference"] for p in table["pairs"] if p["detectable_difference"] is not None
        )
        by_budget[budget] = detectable[len(detectable) // 2] if detectable else None
    within = sorted(
        metrics["power"]["detectable_gold_difference"]
        for _, metrics in runs
        if metrics.get("power") and metrics["power"]["detectable_gold_difference"] is not None
    )
    return {
        "replicates": len(runs),
        "median_detectable_difference_by_kl": by_budget,
        "median_detectable_difference_within_a_run": within[len(within) // 2] if within else None,
        "prompts": runs[0][1].get("power", {}).get("prompts"),
    }


def plain_summary(summary: dict) -> str:
    """One paragraph in words, generated from the tables: a difference is named only where its interval
    excludes zero."""
    n = len(summary["replicates"])
    unit = "seed" if n == 1 else "seeds"
    sentences = []
    for budget, table in summary["by_kl"].items():
        sentences.append(budget_sentence(f"At {budget} nats of KL", table, n, unit))
    for budget, table in summary["by_compute"].items():
        sentences.append(budget_sentence(f"At {budget} training generations", table, n, unit))
    flagged = [
        f"{policy} ({entry['evidence']})"
        for family in summary["overoptimization"].values()
        for policy, entry in family["flags"].items()
        if entry["state"] == "over-optimized"
    ]
    sentences.append(
        "Over-optimized (gold significantly below its peak while the learned reward rose past it): "
        + ("; ".join(flagged) if flagged else "no policy shows that evidence")
        + "."
    )
    power = summary["power"]
    readable = [
        f"{value:.3f} at {budget} nats"
        for budget, value in power["median_detectable_difference_by_kl"].items()
        if value
    ]
    if readable:
        sentences.append(
            f"With {n} {unit}, gold differences smaller than about {', '.join(readable)} are not reliably "
            "detected (80% power); each pair's row says how many seeds its observed difference would need."
        )
    return " ".join(sentence for sentence in sentences if sentence)


def decided(pair: dict) -> bool:
    """Does the pair's interval exclude zero?"""
    low, high = pair["difference"]["low"], pair["difference"]["high"]
    return low is not None and (low > 0 or high < 0)


def budget_sentence(where: str, table: dict, n: int, unit: str) -> str:
    """One budget's verdicts in words."""
    reached = [family for family, entry in table["methods"].items() if entry is not None]
    missing = [family for family, entry in table["methods"].items() if entry is None]
    if len(reached) < 2:
        return f"{where}, fewer than two methods reach it."
    if not table["pairs"]:
        return f"{where}, no seed reaches it with two methods: nothing to compare."
    wins = [f"{p['verdict']} by {abs(p['difference']['mean']):.3f}" for p in table["pairs"] if decided(p)]
    ties = [f"{p['first']}–{p['second']}" for p in table["pairs"] if not decided(p)]
    text = f"{where}: " + ("; ".join(wins) if wins else "no method beats another")
    if ties:
        text += f"; not distinguishable with {n} {unit}: {', '.join(ties)}"
    if missing:
        text += f" ({', '.join(missing)} {'does' if len(missing) == 1 else 'do'} not reach it)"
    return text + "."

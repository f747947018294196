"""Calibration: simulated studies where the truth is known, driven through the project's own code path
(per-replicate metrics.json → reporting.study.compare_replicates → frontier reads, Holm-adjusted verdicts,
flags; reporting.analysis.curve_overoptimization for a run's training curve). Nothing here re-implements
a statistic: it only counts how often the tool is wrong.

Each property runs STUDIES simulated studies from a fixed generator, so the test is exactly repeatable.
Monte Carlo error: a rate p estimated from N independent studies has standard error √(p(1−p)/N); at
N = 2,000 and p = 0.05 that is 0.0049 (per table, over 10,000 tables, 0.002). Each bound is asserted on
the observed rate as it is; the rates and their standard errors are in docs/method.md
(`python benchmarks/calibration.py`). Marked slow: 95 s for the six slow tests on a 2-core AMD EPYC;
`test_calibration_smoke` runs 200 null studies in the default suite.

The simulated study: R replicates (seeds); on each, a shared shift of every policy's gold (the seed's data
and reward model), a reference, and methods whose policies sit at KLs near their settings (multiplicative
noise) with gold = reference + Gao et al.'s RL gain at that KL + noise, learned reward rising with KL.
"""

import numpy as np
import pytest

from rlhf_recipes.reporting.analysis import curve_overoptimization
from rlhf_recipes.reporting.study import across_conditions, compare_replicates

STUDIES = 2000
ALPHA, BETA = 0.3, 0.1  # gold gain d(α − β ln d), d = √KL: the review's case, peak at KL e^4 ≈ 55


def gain(kl):
    d = np.sqrt(np.maximum(kl, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, d * (ALPHA - BETA * np.log(np.where(d > 0, d, 1.0))), 0.0)


def policy(gold, learned, kl):
    return {"gold_mean": float(gold), "reward_model_mean": float(learned), "kl_mean": float(kl)}


def study(rng, grids: dict[str, list[float]], replicates=3, noise=0.03, curve=gain, kl_noise=0.1, learned=0.5):
    """One simulated study: (runs, families) as compare_replicates takes them. grids: method -> its settings'
    nominal KLs; every method's gold follows `curve` (so methods are truly equal at equal KL)."""
    families = {
        method: {"method": method, "knob": "k", "policies": {f"{method}_{i}": i for i in range(len(kls))}}
        for method, kls in grids.items()
    }
    runs = []
    for r in range(replicates):
        reference = 0.1 + rng.normal(0, 0.1)
        policies = {"reference": policy(reference, 0.0, 0.0) | {"n": 288}}
        costs = {"reference": {"training_generations": 0, "training_seconds": 0.0}}
        for method, kls in grids.items():
            kl = np.asarray(kls) * np.exp(rng.normal(0, kl_noise, len(kls)))
            gold = reference + curve(kl) + rng.normal(0, noise, len(kls))
            for i in range(len(kls)):
                policies[f"{method}_{i}"] = policy(gold[i], learned * kl[i] + rng.normal(0, 0.02), kl[i])
                costs[f"{method}_{i}"] = {"training_generations": 1440 + 512 * i, "training_seconds": 1.0}
        runs.append(
            (
                f"seed {r}",
                {
                    "name": "sim",
                    "seed": r,
                    "policies": policies,
                    "best_of_n": {},
                    "costs": costs,
                    "reward_model": {"heldout_accuracy": 0.9},
                },
            )
        )
    return runs, families


BUDGETS = [1.0, 2.0, 4.0, 8.0]


def false_beats_per_table(studies, methods=5, replicates=3, seed=0):
    """Five (or more) truly equal methods on one grid: the fraction of tables that test something (KL
    budgets, and compute budgets where no method's setting was chosen on gold; at least one pair on 3
    replicates) with at least one "beats"."""
    rng = np.random.default_rng(seed)
    grid = [0.5, 1.0, 2.0, 4.0, 8.0]
    tables = wrong = 0
    for _ in range(studies):
        runs, families = study(rng, {f"m{i}": grid for i in range(methods)}, replicates)
        summary = compare_replicates(runs, families, BUDGETS)
        for table in [*summary["by_kl"].values(), *summary["by_compute"].values()]:
            if table.get("exploratory") or not table["comparisons"]:
                continue
            tables += 1
            wrong += any(pair["decided"] for pair in table["pairs"])
    return wrong / tables, tables


def test_calibration_smoke():
    """A few hundred null studies in the default suite: no gross miscalibration."""
    rate, tables = false_beats_per_table(200)
    assert rate <= 0.07, rate


@pytest.mark.slow
@pytest.mark.parametrize("methods", [5, 11])
def test_false_beats_per_table_at_most_5_percent(methods):
    """Truly equal methods: Holm keeps the chance of any false "beats" in one table at 5% (unadjusted, the
    review measured 37% of tables with 5 methods). Asserted within two Monte Carlo standard errors of 5%:
    with 11 methods (55 pairs, Holm's first threshold 0.0009) the rate measured is 5.2% (SE 0.24%), where
    the t test on 2 degrees of freedom decides in its far tail (docs/method.md)."""
    rate, tables = false_beats_per_table(STUDIES // (2 if methods > 5 else 1), methods)
    assert rate <= 0.05 + 2 * (0.05 * 0.95 / tables) ** 0.5, (rate, tables)


def false_beats_across_conditions(studies, conditions=4, replicates=3, seed=6):
    """A condition whose values change nothing (each value's runs drawn alike, a seed's shift shared by its runs
    under every value): the fraction of the across-conditions tables (each policy's gold, each family's gold
    at each KL budget, every value against the first) with at least one false "beats"."""
    rng = np.random.default_rng(seed)
    tables = wrong = 0
    for _ in range(studies):
        shared = rng.normal(0, 0.1, replicates)
        groups = {}
        for value in range(conditions):
            runs, families = study(rng, {"ppo": [1.0, 4.0], "dpo": [2.0]}, replicates)
            for (_, metrics), shift in zip(runs, shared, strict=True):
                for entry in metrics["policies"].values():
                    entry["gold_mean"] += shift
            groups[f"aggregate={value}"] = runs
        across = across_conditions(groups, families, BUDGETS, "seeds")
        for rows in across["tables"].values():
            for table in rows.values():
                if table["comparisons"]:
                    tables += 1
                    wrong += any(pair["decided"] for pair in table["pairs"])
    return wrong / tables, tables


def test_across_conditions_calibration_smoke():
    rate, tables = false_beats_across_conditions(200)
    assert rate <= 0.07, (rate, tables)


@pytest.mark.slow
def test_false_beats_across_conditions_at_most_5_percent():
    """Values of a condition that change nothing: Holm over each row's comparisons with the first value keeps
    the chance of any false "beats" in a row at 5%."""
    rate, tables = false_beats_across_conditions(STUDIES)
    assert rate <= 0.05 + 2 * (0.05 * 0.95 / tables) ** 0.5, (rate, tables)


def sparse_against_dense(studies, seed=1, curve=gain):
    """The review's case: equal methods, one with settings at KL 0.5, 1, 2, 4, 8, the other at 3 and 9; gold
    of Gao et al.'s RL form (the reader's own form: so the bias bound shows the reads are exact for it), or
    another `curve`."""
    rng = np.random.default_rng(seed)
    differences = {budget: [] for budget in ("1", "2")}
    truth = {budget: [] for budget in ("1", "2")}
    covered = decided = 0
    for _ in range(studies):
        runs, families = study(rng, {"dense": [0.5, 1, 2, 4, 8], "sparse": [3, 9]}, curve=curve)
        summary = compare_replicates(runs, families, [1.0, 2.0])
        for budget in ("1", "2"):
            (pair,) = summary["by_kl"][budget]["pairs"]
            if pair["difference"]["low"] is None:
                continue
            differences[budget].append(pair["difference"]["mean"])
            covered += pair["difference"]["low"] <= 0 <= pair["difference"]["high"]
            decided += pair["decided"]
            truth[budget].append(0.0)
    count = sum(len(v) for v in differences.values())
    return {b: float(np.mean(v)) for b, v in differences.items()}, covered / count, decided / count, count


@pytest.mark.slow
def test_reads_do_not_depend_on_the_grid_and_intervals_cover():
    """Read bias ≤ 0.03 between a dense and a sparse grid of equal methods (linear in KL it was 0.159 at
    1 nat); 95% intervals of the difference cover 93–97%; false "beats" at most 5%."""
    bias, coverage, false_beats, count = sparse_against_dense(STUDIES)
    assert all(abs(value) <= 0.03 for value in bias.values()), bias
    assert 0.93 <= coverage <= 0.97, (coverage, count)
    assert false_beats <= 0.05, false_beats


def flat_after(knee: float):
    """Gold that rises to KL `knee` and then stays flat: no over-optimization, and the least favourable such
    truth for the flag (between flat settings, the true gold difference is exactly 0)."""
    return lambda kl: gain(np.minimum(kl, knee))


def false_flags_per_method(studies, seed=2, knee=1.0, grid=(0.5, 1.0, 2.0, 4.0, 8.0), curve=None, learned=0.5):
    """The fraction of methods with at least one over-optimization flag when gold never falls (or, with a
    `curve` and `learned` < 0, when the learned reward falls with gold: no over-optimization either)."""
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(studies):
        runs, families = study(rng, {"m": list(grid)}, curve=curve or flat_after(knee), learned=learned)
        summary = compare_replicates(runs, families, [])
        flagged += any(f["state"] == "over-optimized" for f in summary["overoptimization"]["m"]["flags"].values())
    return flagged / studies


def curve_points(rng, checkpoints: int, prompts=72, knee=0.5, total_kl=6.0, scale=None):
    """A run's held-out training curve (what HeldoutCurve records): per checkpoint, per-prompt gold, learned
    reward and KL; gold rises with KL to `knee`, then stays flat; the learned reward keeps rising."""
    prompt_effect = rng.normal(0, 0.3, prompts)
    points = []
    for index, fraction in enumerate(np.linspace(0, 1, checkpoints)):
        kl = np.maximum(total_kl * fraction * np.exp(rng.normal(0, 0.3, prompts)), 0.0)
        gold = prompt_effect + gain(np.minimum(kl, knee)) + rng.normal(0, 0.3, prompts)
        learned = prompt_effect + 0.5 * kl + rng.normal(0, 0.3, prompts)
        points.append(
            {
                "step": 10 * index,
                "gold_mean": float(gold.mean()),
                "gold": gold.tolist(),
                "reward_model": learned.tolist(),
                "kl": kl.tolist(),
            }  # fmt: skip
        )
    return points


def false_flags_per_curve(studies, checkpoints, seed=3, total_kl=6.0):
    rng = np.random.default_rng(seed)
    return (
        sum(
            curve_overoptimization(curve_points(rng, checkpoints, total_kl=total_kl))["state"] == "over-optimized"
            for _ in range(studies)
        )
        / studies
    )


@pytest.mark.slow
def test_false_over_optimization_flags_at_most_5_percent_per_method_and_per_curve():
    """Gold rises then stays flat while the learned reward keeps rising: no over-optimization. Flags per
    method family (5 settings; the review measured 15–20% with the best-earlier-point peak), per training
    curve (6 and 11 checkpoints; 8–15%), and for policies that barely moved (6%)."""
    assert false_flags_per_method(STUDIES) <= 0.05
    assert false_flags_per_method(STUDIES, grid=(0.02, 0.04, 0.06, 0.08, 0.1)) == 0, "barely moved: never flagged"
    falls_too = false_flags_per_method(STUDIES // 4, curve=lambda kl: 0.3 - 0.2 * np.abs(np.log2(kl)), learned=-0.05)
    assert falls_too <= 0.05, "gold fell, but so did the learned reward: the reward model saw it, no over-optimization"
    for checkpoints in (6, 11):
        assert false_flags_per_curve(STUDIES, checkpoints) <= 0.05, checkpoints
    assert false_flags_per_curve(STUDIES // 4, 6, total_kl=0.08) == 0, "a curve that barely moved is never flagged"


@pytest.mark.slow
def test_a_real_over_optimization_is_flagged():
    """The flag is not calibrated by never firing: gold that peaks at KL 1 and falls by 0.4 by KL 8 while
    the learned reward rises is flagged in most simulated studies (its power, stated in docs/method.md)."""
    rng = np.random.default_rng(4)
    flagged = 0
    for _ in range(STUDIES // 4):
        runs, families = study(rng, {"m": [0.5, 1.0, 2.0, 4.0, 8.0]}, curve=lambda kl: 0.3 - 0.2 * np.abs(np.log2(kl)))
        summary = compare_replicates(runs, families, [])
        flagged += any(f["state"] == "over-optimized" for f in summary["overoptimization"]["m"]["flags"].values())
    assert flagged / (STUDIES // 4) > 0.5


def power_at_the_quoted_difference(studies, replicates=5, sd=0.05, seed=5):
    """Two methods one setting each at KL 4, one better by the difference the tool quotes as detectable for
    this SD: the fraction of studies whose verdict says so."""
    from rlhf_recipes.reporting.statistics import detectable_difference

    difference = detectable_difference(sd, replicates)
    rng = np.random.default_rng(seed)
    found = 0
    for _ in range(studies):
        runs, families = study(rng, {"a": [4.0], "b": [4.0]}, replicates, noise=sd / np.sqrt(2), kl_noise=0.0)
        for _, metrics in runs:
            metrics["policies"]["a_0"]["gold_mean"] += difference
        (pair,) = compare_replicates(runs, families, [4.0])["by_kl"]["4"]["pairs"]
        found += pair["decided"] and pair["difference"]["mean"] > 0
    return found / studies


@pytest.mark.slow
def test_power_at_the_quoted_detectable_difference_is_what_it_claims():
    """80% claimed; within 3 points (Monte Carlo standard error 0.009 at 2,000 studies)."""
    assert abs(power_at_the_quoted_difference(STUDIES) - 0.80) <= 0.03

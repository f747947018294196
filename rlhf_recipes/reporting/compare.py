"""`rlhf compare`: runs and studies side by side, grouped by gold judge. Gold numbers from different judges
are on different scales, so each judge gets its own tables and nothing is ranked across judges. Within a
judge, two or more runs are also compared as replicates: the verdict table of a study (reporting/study.py),
over the methods every run trained."""

import json
from pathlib import Path

from ..errors import RecipeError
from .blocks import interval, number, render_markdown, signed_interval
from .run_files import read_json, read_run_metrics, read_study_plan
from .study import compare_replicates, finished_runs
from .study_report import budget_blocks, compute_note, kl_note

DEFAULT_KL_BUDGETS = [1.0, 2.0, 4.0, 8.0]


def load_runs(path: Path) -> tuple[list[tuple[str, dict, dict]], list[str]]:
    """(label, metrics, families) of each run that `path` names: a run directory, its metrics.json, or a study
    directory (each of its finished runs, with the study's method families); and one line for each run or
    study that cannot be compared, saying why. A run is labeled by its directory as given (two runs may share
    a recipe name and seed)."""
    directory = path.parent if path.suffix == ".json" else path
    metrics_path = path if path.suffix == ".json" else path / "metrics.json"
    try:
        if (directory / "study.json").is_file() or (
            metrics_path.is_file() and read_json(metrics_path).get("kind") == "study"
        ):
            plan = read_study_plan(directory)
            runs, problems = finished_runs(directory, plan)
            return [(f"{directory}/{run['dir']}", metrics, plan["families"]) for run, metrics in runs], problems
        metrics = read_run_metrics(metrics_path)
    except RecipeError as error:
        return [], error.problems
    families = {name: {"method": method, "knob": None, "policies": {name: None}} for name, method in
                metrics.get("methods", {}).items()}  # fmt: skip
    return [(f"{directory} (seed {metrics.get('seed', '?')})", metrics, families)], []


def trained(label: str, metrics: dict) -> set[tuple[str, str]]:
    """The (policy, fingerprint) of every trained policy of a run, from its stage records (a fingerprint
    covers a stage's recipe section, seeds and inputs, so a copy of a run has its original's); for a run
    without stage records (a bare metrics.json), one pseudo-policy standing for its whole metrics."""
    directory = Path(label.split(" (seed ")[0])
    fingerprints = set()
    for policy in metrics.get("methods", {}):
        record = directory / policy / "stage.json"
        if record.is_file() and "fingerprint" in (stage := read_json(record)):
            fingerprints.add((policy, stage["fingerprint"]))
    return fingerprints or {("metrics", json.dumps(metrics, sort_keys=True))}


def distinct_runs(runs: list[tuple[str, dict, dict]]) -> tuple[list[tuple[str, dict, dict]], list[str]]:
    """The runs that are replicates of each other: a run given twice, copied, or sharing the training of any
    policy with a run kept before it (the same stage fingerprint: a copy with a method added) is counted
    once, since its shared policies are the same draw; a sentence per run left out says which it repeats."""
    kept, seen, notes = [], [], []
    for run in runs:
        policies = trained(run[0], run[1])
        repeated = next(((label, shared) for label, others in seen if (shared := policies & others)), None)
        if repeated:
            label, shared = repeated
            what = ", ".join(sorted(policy for policy, _ in shared if policy != "metrics"))
            notes.append(
                f"{run[0]} is the same run as {label}"
                + (f" (the same trained {what}: same stage fingerprints)" if what else " (the same metrics.json)")
                + ": counted once, since a copy is not a replicate"
            )
            continue
        seen.append((run[0], policies))
        kept.append(run)
    return kept, notes


def compare_readable(paths: list[Path]) -> tuple[str, list[str]]:
    """The markdown `rlhf compare` prints, of every run that can be compared ("" if none can), and one line
    for each run or study left out, saying why and what to do."""
    given, left_out = [], []
    for path in paths:
        runs, problems = load_runs(path)
        given += runs
        left_out += [f"left out of the comparison: {line}" for line in problems]
    return (runs_text(given) if given else ""), left_out


def compare_text(paths: list[Path]) -> str:
    """The markdown `rlhf compare` prints; a RecipeError, with every problem, if any run cannot be compared."""
    text, left_out = compare_readable(paths)
    if left_out:
        raise RecipeError(left_out)
    return text


def runs_text(given: list[tuple[str, dict, dict]]) -> str:
    """The markdown of the runs given: grouped by gold judge, each run given twice counted once."""
    by_judge: dict[str, list[tuple[str, dict, dict]]] = {}
    runs, repeated = distinct_runs(given)
    for run in runs:
        by_judge.setdefault(run[1]["gold_labeler"], []).append(run)
    blocks: list[tuple] = [("p", "**Replicates.** " + "; ".join(repeated) + ".")] if repeated else []
    if len(by_judge) > 1:
        blocks.append(
            (
                "p",
                f"These runs are judged by {len(by_judge)} different gold labelers. Gold scores from different "
                "judges are not comparable, so each judge has its own tables below, and no run or method is ranked "
                "against one judged differently.",
            )
        )
    for judge, runs in by_judge.items():
        blocks += judge_blocks(judge, runs)
    return render_markdown(blocks)


def judge_blocks(judge: str, runs: list[tuple[str, dict, dict]]) -> list[tuple]:
    rows = []
    for label, metrics, _ in runs:
        accuracy = metrics["reward_model"]["heldout_accuracy"]
        for name, m in metrics["policies"].items():
            gain = m.get("gold_gain")
            rows.append(
                [label, name, number(m["gold_mean"]), interval(m.get("gold_ci95", [None, None])),
                 "" if gain is None or name == "reference" else signed_interval(gain), number(m["kl_mean"]),
                 number(m["win_rate_vs_reference"]), number(accuracy)]
            )  # fmt: skip
    blocks: list[tuple] = [
        ("h1", f"Gold judge: {judge} ({len(runs)} run{'s' if len(runs) > 1 else ''})"),
        (
            "table",
            [
                "run",
                "policy",
                "gold mean",
                "gold 95% CI",
                "gold gain [95% CI]",
                "KL (nats)",
                "win rate",
                "reward-model accuracy",
            ],
            rows,
        ),  # fmt: skip
    ]
    if len(runs) < 2:
        return blocks + [
            (
                "p",
                "One run (one replicate): no verdict over replicates (its report compares its policies over prompts).",
            )
        ]
    families, left_out = shared_families(runs)
    if not families:
        return blocks + [("p", "No method is in every run: nothing to compare over replicates.")]
    summary = compare_replicates(
        [(label, metrics) for label, metrics, _ in runs], families, DEFAULT_KL_BUDGETS, replicates="runs"
    )
    n = len(runs)
    blocks.append(
        (
            "p",
            f"**Over the {n} runs as replicates.** {summary['summary']} Runs are treated as seeds of one "
            "experiment: anything else that differs between their recipes is confounded with the seed."
            + (f" Not in every run, so left out: {', '.join(left_out)}." if left_out else ""),
        )
    )
    blocks += budget_blocks("Verdict at KL budgets", "nats", summary["by_kl"], kl_note("runs"))
    blocks += budget_blocks("Verdict at equal compute", "generations", summary["by_compute"], compute_note("runs"))
    return blocks


def shared_families(runs: list[tuple[str, dict, dict]]) -> tuple[dict, list[str]]:
    """The method families whose every policy is in every run, and the names of the others."""
    candidates: dict[str, dict] = {}
    for _, _, families in runs:
        for name, entry in families.items():
            candidates.setdefault(name, entry)
    shared, left_out = {}, []
    for name, entry in candidates.items():
        if all(policy in metrics["policies"] for _, metrics, _ in runs for policy in entry["policies"]):
            shared[name] = entry
        else:
            left_out.append(name)
    return shared, left_out

"""Sweeps: one variant run per value of one key and per seed, in variants/<label>/ of the sweep's
directory. Stages a variant shares with an earlier one (same fingerprint) are linked, not rerun:
sweeping ppo.kl_coef trains the reward model once per seed. The sweep's own report sets the
variants side by side, mean and standard deviation over seeds."""

import json
import os
from pathlib import Path

import yaml
from rich.console import Console

from ..config.loader import sweep_variant_data, variant_label
from ..config.schema import Recipe
from ..errors import RecipeError
from ..reporting.metrics import mean, std
from .directory import hold_lock

SWEPT_METRICS = [  # (label, path into a variant's metrics.json, per policy?)
    ("gold mean", "gold_mean", True),
    ("KL (nats)", "kl_mean", True),
    ("win rate", "win_rate_vs_reference", True),
    ("learned reward", "reward_model_mean", True),
]


def run_sweep(recipe: Recipe, run_dir: Path, console: Console | None = None, force: str | None = None) -> dict:
    """Run every variant of recipe.sweep and write the sweep's metrics.json, report.md and report.html."""
    from .pipeline import run_recipe

    console = console or Console(stderr=True)
    if run_dir.is_dir() and any(run_dir.iterdir()) and not (run_dir / "sweep.json").is_file():
        raise RecipeError(
            f"--output-dir: {run_dir} already exists, is not empty and holds no sweep. Fix: pass another --output-dir."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = hold_lock(run_dir)  # noqa: F841 (held until the sweep ends)
    data = recipe.model_dump(mode="json")
    variants = [(label, Recipe.model_validate(raw)) for label, raw in sweep_variant_data(recipe, data)]
    sweep = recipe.sweep
    plan = {
        "name": recipe.name,
        "key": sweep.key,
        "values": sweep.values,
        "seeds": sweep.seeds or [recipe.seed],
        "variants": [label for label, _ in variants],
    }
    _write(run_dir / "sweep.json", json.dumps(plan, indent=2) + "\n")
    _write(run_dir / "recipe.resolved.yaml", yaml.safe_dump(data, sort_keys=False))
    done: list[Path] = []
    for index, (label, variant) in enumerate(variants, 1):
        console.print(f"[bold]variant {index}/{len(variants)}: {label}[/bold]")
        variant_dir = run_dir / "variants" / label
        run_recipe(variant, variant_dir, console, siblings=done, force=force)
        done.append(variant_dir)
    return write_sweep_report(run_dir)


def summarise_sweep(run_dir: Path) -> dict:
    """The sweep's metrics.json: per policy and value, each metric's mean and std over seeds."""
    plan = json.loads((run_dir / "sweep.json").read_text())
    values = plan["values"] if plan["key"] else [None]
    rows: dict[str, dict[str, dict]] = {}
    accuracy: dict[str, list[float]] = {}
    for value in values:
        runs = []
        for seed in plan["seeds"]:
            label = variant_label(plan["key"], value, seed)
            runs.append(json.loads((run_dir / "variants" / label / "metrics.json").read_text()))
        shown = "all" if value is None else str(value)
        accuracy[shown] = [m["reward_model"]["heldout_accuracy"] for m in runs]
        for policy in runs[0]["policies"]:
            entry = rows.setdefault(policy, {}).setdefault(shown, {"seeds": len(runs)})
            for _, key, _ in SWEPT_METRICS:
                series = [m["policies"][policy][key] for m in runs]
                entry[key] = {"mean": mean(series), "std": std(series), "values": series}
    return {
        "schema_version": 1,
        "name": plan["name"],
        "sweep": {"key": plan["key"], "values": plan["values"], "seeds": plan["seeds"]},
        "policies": rows,
        "reward_model_heldout_accuracy": {
            value: {"mean": mean(a), "std": std(a), "values": a} for value, a in accuracy.items()
        },
        "variants": {label: f"variants/{label}" for label in plan["variants"]},
    }


def write_sweep_report(run_dir: Path) -> dict:
    from ..reporting.report import render_html, render_markdown

    metrics = summarise_sweep(run_dir)
    sweep = metrics["sweep"]
    key = sweep["key"] or "(seeds only)"
    (run_dir / "plots").mkdir(exist_ok=True)
    sweep_frontier(metrics, run_dir / "plots" / "sweep_frontier.png")
    header = ["policy", sweep["key"] or "variant", "seeds"] + [label for label, _, _ in SWEPT_METRICS]
    rows = [
        [policy, value, str(entry["seeds"])]
        + [f"{entry[k]['mean']:.3f} ± {entry[k]['std']:.3f}" for _, k, _ in SWEPT_METRICS]
        for policy, by_value in metrics["policies"].items()
        for value, entry in by_value.items()
    ]
    accuracy = metrics["reward_model_heldout_accuracy"]
    blocks = [
        ("h1", f"Sweep `{metrics['name']}`: {key}"),
        (
            "p",
            f"Values: {sweep['values'] if sweep['key'] else 'one'}; seeds: {sweep['seeds']}. Each cell: mean ± "
            "standard deviation over seeds. Every variant's full report is in variants/<label>/report.md.",
        ),
        ("h2", "Policies"),
        ("table", header, rows),
        ("image", "sweep_frontier.png", "Gold reward vs KL per value (mean over seeds, bars: one standard deviation)."),
        ("h2", "Reward model held-out accuracy"),
        (
            "table",
            [sweep["key"] or "variant", "accuracy"],
            [[v, f"{a['mean']:.3f} ± {a['std']:.3f}"] for v, a in accuracy.items()],
        ),
        ("h2", "Variants"),
        ("list", [f"{label}: {path}/report.md" for label, path in metrics["variants"].items()]),
    ]
    _write(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _write(run_dir / "report.md", render_markdown(blocks))
    _write(run_dir / "report.html", render_html(blocks, run_dir / "plots"))
    return metrics


def sweep_frontier(metrics: dict, out: Path) -> None:
    from ..reporting.plots import PALETTE, _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for policy, by_value in metrics["policies"].items():
        xs = [entry["kl_mean"]["mean"] for entry in by_value.values()]
        ys = [entry["gold_mean"]["mean"] for entry in by_value.values()]
        ax.errorbar(
            xs,
            ys,
            xerr=[e["kl_mean"]["std"] for e in by_value.values()],
            yerr=[e["gold_mean"]["std"] for e in by_value.values()],
            fmt="o-" if policy != "reference" else "o",
            color="#555555"
            if policy == "reference"
            else PALETTE[list(metrics["policies"]).index(policy) % len(PALETTE)],
            capsize=3,
            label=policy,
        )
        if policy != "reference":
            for value, x, y in zip(by_value, xs, ys, strict=True):
                ax.annotate(value, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("KL(policy || reference) per response (nats)")
    ax.set_ylabel("gold reward (mean over held-out responses)")
    ax.set_title(f"Sweep of {metrics['sweep']['key'] or 'seeds'}: gold vs KL (labels: values)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)

"""The study report's figures: every method's frontier over seeds (gold vs KL, gold vs training compute),
and Gao et al.'s fitted over-optimization curves. Each marker is a policy's mean over seeds, its bars the
95% t interval over seeds."""

import math
from pathlib import Path

from .plots import FIXED_COLORS, PALETTE, _pyplot
from .study import BEST_OF_N


def family_color(families: list[str], family: str) -> str:
    if family in FIXED_COLORS:
        return FIXED_COLORS[family]
    trained = [name for name in families if name not in FIXED_COLORS]
    return PALETTE[trained.index(family) % len(PALETTE)]


def bars(entry: dict) -> list[float]:
    """An interval as errorbar half-widths; zero where it has none (one seed)."""
    if entry["low"] is None:
        return [0.0, 0.0]
    return [entry["mean"] - entry["low"], entry["high"] - entry["mean"]]


def frontiers(summary: dict, condition: str, out: Path, gold_labeler: str) -> None:
    """Gold vs KL: each family's policies (mean over seeds, 95% intervals both ways), joined in KL order from
    the reference; the KL budgets of the verdict table as dotted lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    names = list(summary["families"])
    reference = summary["reference"]["gold"]
    ax.errorbar([0], [reference["mean"]], yerr=[[bars(reference)[0]], [bars(reference)[1]]], fmt="o",
                color=FIXED_COLORS["reference"], capsize=3, label="reference")  # fmt: skip
    for family, entry in summary["families"].items():
        points = sorted(entry["points"], key=lambda p: p["kl"]["mean"])
        tint = family_color(names, family)
        line_x = [p["kl"]["mean"] for p in points]
        line_y = [p["gold"]["mean"] for p in points]
        if entry["method"] != BEST_OF_N and not any(x <= 0 for x in line_x):
            line_x, line_y = [0.0, *line_x], [reference["mean"], *line_y]
        ax.plot(line_x, line_y, "-" if entry["method"] != BEST_OF_N else "--", color=tint, alpha=0.6)
        ax.errorbar(
            [p["kl"]["mean"] for p in points],
            [p["gold"]["mean"] for p in points],
            xerr=list(zip(*(bars(p["kl"]) for p in points), strict=True)),
            yerr=list(zip(*(bars(p["gold"]) for p in points), strict=True)),
            fmt="s" if entry["method"] == BEST_OF_N else "o",
            color=tint,
            capsize=3,
            label=family + (f" ({entry['knob']})" if entry["knob"] else ""),
        )
        if entry["knob"]:
            for p in points:
                ax.annotate(f"{p['value']:g}" if isinstance(p["value"], float) else str(p["value"]),
                            (p["kl"]["mean"], p["gold"]["mean"]), textcoords="offset points", xytext=(4, 4),
                            fontsize=7, color=tint)  # fmt: skip
    for budget in summary["by_kl"]:
        ax.axvline(float(budget), color="#999999", linestyle=":", linewidth=0.8)
    ax.set_xlabel("KL(policy || reference) per response (nats); best-of-N: its bound log N - (N-1)/N")
    ax.set_ylabel(f"gold: {gold_labeler} (mean)")
    ax.set_title(f"Gold vs KL over {len(summary['replicates'])} {summary['unit']} ({condition}):\nmean, 95% t interval")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def compute(summary: dict, condition: str, out: Path, gold_labeler: str) -> None:
    """Gold vs training compute, in generations (left) and wall seconds (right); log scale where the costs
    span more than a factor of 10. Families that cost the same are drawn side by side (dodged by 1% of the
    axis per family) so that none hides another."""
    from matplotlib.ticker import ScalarFormatter

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    names = list(summary["families"])
    for ax, key, label in (
        (axes[0], "generations", "generations (preference samples + the method's own + per answer: 1, or N)"),
        (axes[1], "training_seconds", "training wall seconds (reward model included where it is read)"),
    ):
        costs = [max(p[key]["mean"], 1e-3) for e in summary["families"].values() for p in e["points"]]
        logarithmic = max(costs) > 10 * min(costs)
        for index, (family, entry) in enumerate(summary["families"].items()):
            points = sorted(entry["points"], key=lambda p: p[key]["mean"])
            tint = family_color(names, family)
            dodge = (index - (len(names) - 1) / 2) * 0.01
            ax.errorbar(
                [
                    max(p[key]["mean"], 1e-3) * (1 + dodge) if logarithmic else p[key]["mean"] + dodge * max(costs)
                    for p in points
                ],
                [p["gold"]["mean"] for p in points],
                xerr=list(zip(*(bars(p[key]) for p in points), strict=True)),
                yerr=list(zip(*(bars(p["gold"]) for p in points), strict=True)),
                fmt="s--" if entry["method"] == BEST_OF_N else "o-",
                color=tint,
                alpha=0.85,
                capsize=3,
                label=family + (" (N generations per answer)" if entry["method"] == BEST_OF_N else ""),
            )
        ax.axhline(summary["reference"]["gold"]["mean"], color=FIXED_COLORS["reference"], linestyle=":",
                   label="reference")  # fmt: skip
        if logarithmic:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(ScalarFormatter())
            ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlabel(label + (", log scale" if logarithmic else ""), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"gold: {gold_labeler} (mean)")
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"Gold vs compute over {len(summary['replicates'])} {summary['unit']} ({condition})", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def overoptimization(summary: dict, condition: str, out: Path) -> None:
    """Gold gain over the reference vs d = √KL: each family's points (per policy, mean over seeds) and its
    fitted Gao et al. curve; a vertical tick at the fitted peak."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    names = list(summary["families"])
    for family, entry in summary["families"].items():
        tint = family_color(names, family)
        points = entry["points"]
        ax.errorbar(
            [math.sqrt(max(p["kl"]["mean"], 0.0)) for p in points],
            [p["gold_gain"]["mean"] for p in points],
            yerr=list(zip(*(bars(p["gold_gain"]) for p in points), strict=True)),
            fmt="s" if entry["method"] == BEST_OF_N else "o",
            color=tint,
            capsize=3,
        )
        fit = summary["overoptimization"][family]["fit"]
        if fit is None:
            ax.plot([], [], color=tint, label=f"{family}: too few settings to fit")
            continue
        top = max(math.sqrt(max(p["kl"]["mean"], 0.0)) for p in points) * 1.3
        ds = [top * i / 100 for i in range(1, 101)]
        second = (lambda d: d * d) if fit["form"] == "best_of_n" else (lambda d: d * math.log(d))
        if fit["peak"] == "within":
            peak = f"peak at KL {fit['peak_kl']:.2f}"
        else:
            peak = "no peak: still rising" if fit["peak"] == "none" else "peak beyond the data"
        ax.plot(ds, [d * fit["alpha"] - fit["beta"] * second(d) for d in ds], "-", color=tint, alpha=0.7,
                label=f"{family}: α={fit['alpha']:.3f}, β={fit['beta']:.3f}, {peak}")  # fmt: skip
        if fit["peak_kl"] is not None and math.sqrt(fit["peak_kl"]) <= top:
            ax.axvline(math.sqrt(fit["peak_kl"]), color=tint, linestyle=":", linewidth=1)
    ax.axhline(0, color="#555555", linewidth=0.8)
    ax.set_xlabel("d = √KL (nats^½)")
    ax.set_ylabel(f"gold gain over the reference (mean over {summary['unit']})")
    ax.set_title(f"Over-optimization, fitted ({condition}):\nRL d(α − β ln d), best-of-N d(α − βd)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)

"""The report's figures, as PNG files, each readable on its own: title, axis labels with units, legend."""

import textwrap
from pathlib import Path

from ..config.methods import registered_methods

# The reference and best-of-N keep their colours; the trained policies take the others in recipe order.
FIXED_COLORS = {"reference": "#555555", "best_of_n": "#2ca02c"}
PALETTE = ["#1f77b4", "#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
           "#aec7e8", "#ff9896", "#c5b0d5", "#ffbb78", "#c49c94"]  # fmt: skip


def color(metrics: dict, name: str) -> str:
    """A policy's colour, the same in every plot of a report."""
    if name in FIXED_COLORS:
        return FIXED_COLORS[name]
    names = list(metrics["methods"])
    return PALETTE[names.index(name) % len(PALETTE)] if name in names else "black"


def step_unit(metrics: dict, name: str) -> str:
    """What a training curve of policy `name` counts: PPO's updates or optimizer steps."""
    return "PPO update" if metrics["methods"].get(name) == "ppo" else "optimizer step"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def frontier(metrics: dict, out: Path) -> None:
    """Gold reward against KL to the reference: final policies, training checkpoints, best-of-N."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    policies = metrics["policies"]
    for name, curve in metrics["training_curves"].items():
        points = curve["points"]
        ax.plot(
            [p["kl_mean"] for p in points],
            [p["gold_mean"] for p in points],
            "o--",
            color=color(metrics, name),
            alpha=0.45,
            markersize=4,
            label=f"{name} during training (step 0 to {points[-1]['step']})",
        )
    if metrics["best_of_n"]:
        bon = sorted(metrics["best_of_n"].items(), key=lambda item: int(item[0]))
        ax.plot(
            [b["kl_bound"] for _, b in bon],
            [b["gold_mean"] for _, b in bon],
            "s-",
            color=color(metrics, "best_of_n"),
            label="best-of-N (KL: the bound log N - (N-1)/N)",
        )
        for n, b in bon:
            ax.annotate(
                f"N={n}", (b["kl_bound"], b["gold_mean"]), textcoords="offset points", xytext=(4, -10), fontsize=8
            )
    for name, m in policies.items():
        low, high = m["gold_ci95"]
        ax.errorbar(
            [max(m["kl_mean"], 0.0)],
            [m["gold_mean"]],
            yerr=[[m["gold_mean"] - low], [high - m["gold_mean"]]],
            fmt="o" if name == "reference" else "*",
            markersize=8 if name == "reference" else 14,
            color=color(metrics, name),
            capsize=3,
            label=f"{name} (final, 95% CI)",
        )
    ax.set_xlabel("KL(policy || reference) per response (nats)")
    # a model judge's name is long: wrapped, it stays inside the figure
    ax.set_ylabel(textwrap.fill(f"gold reward: {metrics['gold_labeler']} (mean)", 45))
    ax.set_title("Gold reward vs KL on held-out prompts")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)  # beside: never over a point
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def training_curves(metrics: dict, out: Path) -> None:
    """Per method, held-out gold and learned reward against training step, and the KL."""
    plt = _pyplot()
    curves = metrics["training_curves"]
    fig, axes = plt.subplots(len(curves), 2, figsize=(10, 3.2 * len(curves)), squeeze=False)
    for row, (name, curve) in enumerate(curves.items()):
        points = curve["points"]
        steps = [p["step"] for p in points]
        unit, tint = step_unit(metrics, name), color(metrics, name)
        left = axes[row][0]
        left.plot(steps, [p["gold_mean"] for p in points], "o-", color=tint, label="gold (left axis)")
        left.set_xlabel(unit)
        left.set_ylabel("gold reward (mean)", color=tint)
        twin = left.twinx()
        twin.plot(
            steps, [p["reward_model_mean"] for p in points], "s--", color="#ff7f0e", label="learned reward (right axis)"
        )
        twin.set_ylabel("learned reward (mean)", color="#ff7f0e")
        state = curve["overoptimization"]["state"]
        flag = f"  [over-optimization: {state}]" if state != "fine" else ""
        left.set_title(f"{name}: held-out gold and learned reward{flag}", fontsize=10)
        left.grid(alpha=0.3)
        right = axes[row][1]
        right.plot(steps, [p["kl_mean"] for p in points], "o-", color="#9467bd")
        right.set_xlabel(unit)
        right.set_ylabel("KL to reference (nats)")
        right.set_title(f"{name}: KL(policy || reference) on held-out prompts", fontsize=10)
        right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


REWARD_MODEL_PANELS = (("loss", "Bradley-Terry loss"), ("accuracy", "train batch accuracy"))


def trainer_logs(metrics: dict, logs: dict[str, list[dict]], out: Path) -> bool:
    """TRL's own logged curves, a small panel each (the reward model's, then each method's LOG_PANELS);
    False (and no file) when nothing was logged. logs: stage name -> its log history."""

    kinds = {cls.stage: cls for cls in registered_methods()}
    wanted = [("reward_model", key, f"reward model: {title}") for key, title in REWARD_MODEL_PANELS]
    for name, method in metrics["methods"].items():
        wanted += [(name, key, f"{name}: {title}") for key, title in kinds[method].LOG_PANELS]
    panels = [(stage, key, title) for stage, key, title in wanted if any(key in e for e in logs.get(stage, []))]
    if not panels:
        return False
    plt = _pyplot()
    columns = 3
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(12, 2.8 * rows), squeeze=False)
    for index, (stage, key, title) in enumerate(panels):
        ax = axes[index // columns][index % columns]
        entries = [e for e in logs[stage] if key in e]
        ax.plot([e["step"] for e in entries], [e[key] for e in entries], color=color(metrics, stage))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(step_unit(metrics, stage))
        ax.grid(alpha=0.3)
    for index in range(len(panels), rows * columns):
        axes[index // columns][index % columns].axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return True


def win_rates(metrics: dict, out: Path) -> None:
    """Win, tie and loss fractions against the reference, judged by gold, per method."""
    plt = _pyplot()
    rows = [(name, m) for name, m in metrics["policies"].items() if name != "reference"]
    rows += [
        (f"best-of-{n}", b) for n, b in sorted(metrics["best_of_n"].items(), key=lambda item: int(item[0])) if n != "1"
    ]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.5))
    for y, (_label, m) in enumerate(rows):
        total = m["wins"] + m["ties"] + m["losses"]
        parts = [m["wins"] / total, m["ties"] / total, m["losses"] / total]
        left = 0.0
        for part, color, name in zip(parts, ("#2ca02c", "#bbbbbb", "#d62728"), ("win", "tie", "loss"), strict=True):
            ax.barh(y, part, left=left, color=color, label=name if y == 0 else None)
            left += part
        ax.text(1.01, y, f"{m['win_rate_vs_reference']:.2f}", va="center", fontsize=9)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.invert_yaxis()
    ax.axvline(0.5, color="black", linewidth=0.8, linestyle=":")
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("fraction of held-out comparisons with the reference (gold); number: win rate, ties half")
    ax.set_title("Win rate against the reference", pad=24)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def lengths(metrics: dict, generations: list[dict], out: Path) -> None:
    """Distribution of response length per policy."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    by_policy: dict[str, list[int]] = {}
    for row in generations:
        by_policy.setdefault(row["policy"], []).append(row["words"])
    longest = max(max(words) for words in by_policy.values())
    bins = range(0, longest + 2, max(1, (longest + 1) // 30))
    for name, words in by_policy.items():
        ax.hist(
            words,
            bins=bins,
            histtype="step",
            linewidth=1.8,
            color=color(metrics, name),
            label=f"{name} (mean {sum(words) / len(words):.1f})",
        )
    ax.set_xlabel("response length (words)")
    ax.set_ylabel("responses")
    ax.set_title("Response length on held-out prompts")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def reward_model_accuracy(metrics: dict, out: Path) -> None:
    """Held-out pairwise accuracy of the reward model (and of each policy's implicit reward, DPO-style methods)
    against gold and against the noisy labels, with the Bayes ceiling of the noisy labels."""
    plt = _pyplot()
    rm = metrics["reward_model"]
    bars = [
        ("reward model\nvs gold", rm["heldout_accuracy"], "#ff7f0e"),
        ("reward model\nvs labels", rm["heldout_accuracy_vs_labels"], "#ffbb78"),
    ]
    for name, implicit in metrics["implicit_rewards"].items():
        bars += [
            (f"{name} implicit\nvs gold", implicit["heldout_accuracy"], color(metrics, name)),
            (f"{name} implicit\nvs labels", implicit["heldout_accuracy_vs_labels"], color(metrics, name)),
        ]
    fig, ax = plt.subplots(figsize=(max(7, 1.2 * len(bars)), 4))
    ax.bar(range(len(bars)), [value for _, value, _ in bars], color=[tint for _, _, tint in bars])
    for x, (_, value, _) in enumerate(bars):
        ax.text(x, value + 0.01, f"{value:.3f}", ha="center", fontsize=9)
    if rm["bayes_accuracy_vs_labels"] is not None:  # unknown for your own pairs: their noise is not known
        ax.axhline(
            rm["bayes_accuracy_vs_labels"],
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"Bayes ceiling vs noisy labels: {rm['bayes_accuracy_vs_labels']:.3f}",
        )
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="chance: 0.5")
    ax.set_xticks(range(len(bars)), [label for label, _, _ in bars], fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel(f"pairwise accuracy on {rm['heldout_pairs']} held-out pairs")
    ax.set_title("Preference accuracy on held-out prompts")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)

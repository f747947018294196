"""metrics.json (the documented contract) and report.md, written from the stages' saved outputs."""

import json
from pathlib import Path

from .recipe import Recipe

SCHEMA_VERSION = 1


def build_metrics(recipe: Recipe, preferences: dict, reward: dict, policies: dict, stage_seconds: dict) -> dict:
    """The contents of metrics.json; README.md documents every key."""
    return {
        "schema_version": SCHEMA_VERSION,
        "name": recipe.name,
        "seed": recipe.seed,
        "labeler": recipe.labeler.kind,
        "preferences": {
            "train_pairs": preferences["train"]["pairs"],
            "heldout_pairs": preferences["heldout"]["pairs"],
            "ties_dropped": preferences["train"]["ties_dropped"],
            "noisy_label_fraction": preferences["train"]["noisy_label_fraction"],
        },
        "reward_model": {
            "heldout_accuracy": reward["heldout"]["accuracy_vs_gold"],
            "heldout_accuracy_vs_labels": reward["heldout"]["accuracy_vs_labels"],
            "heldout_pairs": reward["heldout"]["pairs"],
            "train_accuracy": reward["train"]["accuracy_vs_gold"],
        },
        "policies": policies,
        "stage_seconds": stage_seconds,
    }


def render_report(metrics: dict, generations: list[dict], examples: int) -> str:
    """report.md: the comparison table, reward-model quality, the data, samples and time per stage."""
    policies, rm, prefs = metrics["policies"], metrics["reward_model"], metrics["preferences"]
    n = policies["reference"]["n"]
    lines = [
        f"# Run `{metrics['name']}` (seed {metrics['seed']})",
        "",
        f"## Policies on held-out prompts ({n} responses each)",
        "",
        "| policy | gold mean ± std | reward-model mean | KL to reference (nats) | win rate vs reference | wins / ties / losses | mean words |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in policies.items():
        lines.append(
            f"| {name} | {m['gold_mean']:.3f} ± {m['gold_std']:.3f} | {m['reward_model_mean']:.3f} | {m['kl_mean']:.3f} "
            f"| {m['win_rate_vs_reference']:.3f} | {m['wins']} / {m['ties']} / {m['losses']} | {m['mean_length_words']:.1f} |"
        )
    lines += [
        "",
        f"Gold is the `{metrics['labeler']}` labeler without noise. Win rate: the gold score of each response "
        "against the reference's response to the same prompt and sample index; a tie counts half. "
        "KL: mean over responses sampled from the policy of log π(y|x) − log π_ref(y|x) (the k1 estimator).",
        "",
        "## Reward model",
        "",
        f"- Held-out pairwise accuracy against gold: **{rm['heldout_accuracy']:.3f}** on {rm['heldout_pairs']} pairs "
        "from prompts never trained on",
        f"- Against the (noisy) labels it was trained to imitate: {rm['heldout_accuracy_vs_labels']:.3f}",
        f"- On its own training pairs, against gold: {rm['train_accuracy']:.3f}",
        "",
        "## Preference data",
        "",
        f"- {prefs['train_pairs']} train pairs and {prefs['heldout_pairs']} held-out pairs; "
        f"{prefs['ties_dropped']} tied train pairs dropped",
        f"- Train labels that disagree with gold (simulated noise): {prefs['noisy_label_fraction']:.1%}",
        "",
        "## Samples",
        "",
    ]
    by_policy: dict[str, list[dict]] = {}
    for row in generations:
        by_policy.setdefault(row["policy"], []).append(row)
    step = max(1, len(by_policy["reference"]) // max(examples, 1))
    for index in range(0, step * examples, step)[:examples]:
        prompt = by_policy["reference"][index]["prompt"]
        lines.append(f"**Prompt:** {prompt}")
        lines.append("")
        for name, rows in by_policy.items():
            row = rows[index]
            lines.append(f"- {name} (gold {row['gold']:.2f}, reward model {row['reward_model']:.2f}): {row['response'].strip()!r}")
        lines.append("")
    lines += ["## Time per stage", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in metrics["stage_seconds"].items()]
    lines.append(f"| total | {sum(metrics['stage_seconds'].values()):.1f} |")
    return "\n".join(lines) + "\n"


def read_generations(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as rows:
        return [json.loads(line) for line in rows]

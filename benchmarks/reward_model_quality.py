"""How good is a recipe's reward model, and how sure are we? Runs a recipe's stages up to the reward model
(through the stage store: variants that share samples and labels build them once) for each set of
overrides, and prints held-out accuracy against gold with its 95% Wilson interval, accuracy on every
held-out pair of distinct gold (each prompt's responses, pairwise), Spearman with gold, and the stage's
seconds.

    python benchmarks/reward_model_quality.py recipes/smollm2_sentiment.yaml \
        --variant "" --variant "reward_model.learning_rate=3e-4 reward_model.epochs=3"
"""

import argparse
import json
import math
import time
from itertools import combinations
from pathlib import Path

from rlhf_recipes.config.loader import load_recipe
from rlhf_recipes.console import make_console
from rlhf_recipes.run.directory import RunDirectory
from rlhf_recipes.run.pipeline import plan


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def all_pairs_accuracy(responses: list[dict]) -> tuple[float, int]:
    """Accuracy of the learned reward's order on every pair of one prompt's held-out responses whose gold
    differs (a learned tie counts one half)."""
    by_prompt: dict[str, list[dict]] = {}
    for row in responses:
        by_prompt.setdefault(row["prompt"], []).append(row)
    right = total = 0.0
    for rows in by_prompt.values():
        for a, b in combinations(rows, 2):
            if a["gold"] == b["gold"]:
                continue
            total += 1
            agree = (a["gold"] - b["gold"]) * (a["reward_model"] - b["reward_model"])
            right += 1.0 if agree > 0 else 0.5 if agree == 0 else 0.0
    return right / total, int(total)


def measure(recipe_path: Path, overrides: list[str], out: Path) -> dict:
    from rlhf_recipes.reporting.metrics import spearman

    recipe = load_recipe(recipe_path, overrides)
    steps = plan(recipe, out)
    run = RunDirectory.open(out, recipe, console=make_console())
    seconds = 0.0
    for step in steps:
        started = time.time()
        run.step(step)
        seconds = time.time() - started
        if step.name == "reward_model":
            break
    run.close()
    saved = json.loads((out / "reward_model" / "metrics.json").read_text())["heldout"]
    rows = [json.loads(line) for line in (out / "reward_model" / "heldout_responses.jsonl").open()]
    correct = saved["vs_gold"] * saved["pairs"]
    every, pairs = all_pairs_accuracy(rows)
    return {
        "overrides": " ".join(overrides) or "(recipe as is)",
        "heldout_accuracy": saved["vs_gold"],
        "heldout_pairs": saved["pairs"],
        "wilson_95": wilson(correct, saved["pairs"]),
        "all_pairs_accuracy": every,
        "all_pairs": pairs,
        "all_pairs_wilson_95": wilson(every * pairs, pairs),
        "spearman_vs_gold": spearman([r["reward_model"] for r in rows], [r["gold"] for r in rows]),
        "reward_model_seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--variant", action="append", default=[], help="space-separated overrides (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/reward_model_quality"))
    args = parser.parse_args()
    results = []
    for index, variant in enumerate(args.variant or [""]):
        results.append(measure(args.recipe, variant.split(), args.out / f"variant-{index}"))
        print(json.dumps(results[-1]), flush=True)
    print("| overrides | held-out accuracy [95% Wilson] | pairs | all held-out pairs [95%] | pairs | Spearman | s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        low, high = r["wilson_95"]
        all_low, all_high = r["all_pairs_wilson_95"]
        print(
            f"| {r['overrides']} | {r['heldout_accuracy']:.3f} [{low:.3f}, {high:.3f}] | {r['heldout_pairs']} | "
            f"{r['all_pairs_accuracy']:.3f} [{all_low:.3f}, {all_high:.3f}] | {r['all_pairs']} | "
            f"{r['spearman_vs_gold']:.3f} | {r['reward_model_seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()

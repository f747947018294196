"""How good is a recipe's reward model, and how sure are we? Runs a recipe's stages up to the reward model
(through the stage store: variants that share samples and labels build them once) for each set of
overrides, and prints held-out accuracy against gold with its 95% Wilson interval, accuracy on every
held-out pair of distinct gold (each prompt's responses, pairwise), Spearman with gold, and the stage's
seconds.

    python benchmarks/reward_model_quality.py recipes/smollm2_sentiment.yaml \
        --variant "" --variant "reward_model.learning_rate=3e-4 reward_model.epochs=3"

With --fresh-sets K, the reference also answers every held-out prompt K more times as the samples stage
did (as many responses a prompt, new sampling seeds), and each new set's best answer by gold is paired
with its worst: 64 more best-vs-worst pairs a set on the main job, so the held-out accuracy is known
more closely than 64 pairs allow.
"""

import argparse
import json
import math
import time
from itertools import combinations
from pathlib import Path

from rlhf_recipes.config.loader import load_recipe
from rlhf_recipes.console import make_console
from rlhf_recipes.run.pipeline import plan
from rlhf_recipes.runtime.directory import RunDirectory


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


def fresh_best_vs_worst(steps, out: Path, sets: int) -> list[bool]:
    """For each of `sets` new sampling seeds, the reference answers every held-out prompt as the samples stage
    does; each prompt's best answer by gold against its worst (ties dropped): does the reward model agree?"""
    from rlhf_recipes.generation.formatting import prompt_ids
    from rlhf_recipes.generation.sampling import generate_responses
    from rlhf_recipes.generation.scoring import reward_scores
    from rlhf_recipes.labeling.labelers import gold_scores, make_labeler
    from rlhf_recipes.models.loading import load_policy, load_reward_model, load_tokenizer
    from rlhf_recipes.runtime.prompt_files import read_prompts

    config = next(step for step in steps if step.name == "samples").arguments["settings"]
    judging = next(step for step in steps if step.name == "evaluation").arguments
    device, reference = judging["device"], str(judging["policies"]["reference"])
    tokenizer = load_tokenizer(reference, judging["loading"].trust_remote_code)
    model = load_policy(reference, judging["loading"], device)
    scorer = load_reward_model(str(out / "reward_model"), tokenizer.pad_token_id, judging["reward_loading"], device)
    gold = make_labeler(judging["gold_labeler"], device)
    heldout = read_prompts(out / "prompts", "heldout")
    encoded = [prompt_ids(tokenizer, prompt) for prompt in heldout]
    agreed = []
    for fresh_seed in range(1_000, 1_000 + sets):
        groups = generate_responses(
            model,
            tokenizer,
            encoded,
            config.responses_per_prompt,
            config.max_new_tokens,
            config.temperature,
            config.batch_size,
            fresh_seed,
            top_p=config.top_p,
            top_k=config.top_k,
        )
        pairs = []
        for prompt, group in zip(heldout, groups, strict=True):
            texts = [response.text for response in group]
            scores = gold_scores(gold, texts, [prompt] * len(texts))
            best, worst = max(range(len(texts)), key=scores.__getitem__), min(range(len(texts)), key=scores.__getitem__)
            if scores[best] != scores[worst]:
                pairs.append((prompt, texts[best], texts[worst]))
        prompts = [p for p, _, _ in pairs for _ in range(2)]
        texts = [text for _, best, worst in pairs for text in (best, worst)]
        learned = reward_scores(scorer, tokenizer, prompts, texts, config.batch_size)
        agreed += [learned[2 * i] > learned[2 * i + 1] for i in range(len(pairs))]
    return agreed


def measure(recipe_path: Path, overrides: list[str], out: Path, fresh_sets: int = 0) -> dict:
    from rlhf_recipes.metrics import spearman

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
    fresh = fresh_best_vs_worst(steps, out, fresh_sets) if fresh_sets else []
    pooled = (correct + sum(fresh), saved["pairs"] + len(fresh))
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
        "fresh_pairs": len(fresh),
        "fresh_accuracy": sum(fresh) / len(fresh) if fresh else math.nan,
        "pooled_accuracy": pooled[0] / pooled[1],
        "pooled_pairs": pooled[1],
        "pooled_wilson_95": wilson(*pooled),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--variant", action="append", default=[], help="space-separated overrides (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/reward_model_quality"))
    parser.add_argument("--fresh-sets", type=int, default=0, help="new held-out answer sets to pair best vs worst")
    args = parser.parse_args()
    results = []
    for index, variant in enumerate(args.variant or [""]):
        results.append(measure(args.recipe, variant.split(), args.out / f"variant-{index}", args.fresh_sets))
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
    for r in results:
        if r["fresh_pairs"]:
            low, high = r["pooled_wilson_95"]
            print(
                f"{r['overrides']}: fresh best vs worst {r['fresh_accuracy']:.3f} on {r['fresh_pairs']} pairs; "
                f"with the stage's, {r['pooled_accuracy']:.3f} [{low:.3f}, {high:.3f}] on {r['pooled_pairs']} pairs"
            )


if __name__ == "__main__":
    main()

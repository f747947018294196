"""How often the pairwise judge agrees with a run's gold labeler, and what a label costs.

    python benchmarks/judge_agreement.py RUN_DIR [--model builtin:smollm2-135m-instruct]
        [--criterion "more positive"] [--pairs 300] [--batch-size 16] [--seed 0]

Reads RUN_DIR/preferences/scored_responses.jsonl (the responses a run sampled, each with its gold
score, e.g. VADER), takes every pair of one prompt's responses whose gold scores differ (a seeded
sample of --pairs of them), asks the judge about each in both orders (labeling/judge.py, as the
`judge` labeler does) and prints, as JSON:

- agreement: over the pairs the judge decided (its two orders pick the same response), the fraction
  where it prefers the response gold scores higher, with a 95% t interval over prompts (a prompt's
  pairs share responses, so the prompt is the unit);
- agreement_all_pairs: the same over every pair, reading its averaged probability > 0.5;
- inconsistent_fraction: pairs the two orders disagree on (ties for the labeler);
- first_position_probability: the mean P("A") over all questions, 0.5 for a judge with no position bias;
- seconds_per_label: wall time per pair, both orders (what one `judge` label costs), and per question.
"""

import argparse
import json
import random
import statistics
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

from time_recipe import machine

from rlhf_recipes.config.labelers import JudgeLabeler
from rlhf_recipes.labeling.judge import PairJudge, preference_from_orders
from rlhf_recipes.reporting.statistics import t_interval


def gold_pairs(run_dir: Path, count: int, seed: int) -> list[tuple[str, str, str, bool]]:
    """(prompt, a, b, gold prefers a) for a seeded sample of within-prompt pairs whose gold scores differ."""
    by_prompt = defaultdict(list)
    for line in (run_dir / "preferences" / "scored_responses.jsonl").read_text().splitlines():
        row = json.loads(line)
        by_prompt[row["prompt"]].append((row["response"], row["gold"]))
    pairs = [
        (prompt, a, b, gold_a > gold_b)
        for prompt, responses in by_prompt.items()
        for (a, gold_a), (b, gold_b) in combinations(responses, 2)
        if gold_a != gold_b
    ]
    random.Random(seed).shuffle(pairs)
    return pairs[:count]


def by_prompt_interval(pairs, hits) -> dict:
    per_prompt = defaultdict(list)
    for (prompt, *_), hit in zip(pairs, hits, strict=True):
        per_prompt[prompt].append(float(hit))
    return t_interval([statistics.fmean(values) for values in per_prompt.values()]).as_dict() | {"pairs": len(hits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--model", default="builtin:smollm2-135m-instruct")
    parser.add_argument("--criterion", default="more positive")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pairs = gold_pairs(args.run_dir, args.pairs, args.seed)
    config = JudgeLabeler(kind="judge", model=args.model, criterion=args.criterion, batch_size=args.batch_size)
    judge = PairJudge(config, "cpu")
    judge.judge([pairs[0][:3]])  # load the model (and convert a built-in one) outside the timing
    start = time.perf_counter()
    questions = [(p, a, b) for p, a, b, _ in pairs]
    first = judge.first_probabilities(questions)
    second = judge.first_probabilities([(p, b, a) for p, a, b in questions])
    seconds = time.perf_counter() - start
    verdicts = [preference_from_orders(a, b) for a, b in zip(first, second, strict=True)]
    decided = [(pair, (p > 0.5) == pair[3]) for pair, (p, agree) in zip(pairs, verdicts, strict=True) if agree]
    result = {
        "machine": machine(),
        "run_dir": str(args.run_dir),
        "judge": args.model,
        "criterion": args.criterion,
        "agreement": by_prompt_interval([pair for pair, _ in decided], [hit for _, hit in decided]),
        "agreement_all_pairs": by_prompt_interval(
            pairs, [(p > 0.5) == pair[3] for pair, (p, _) in zip(pairs, verdicts, strict=True)]
        ),
        "inconsistent_fraction": round(1 - len(decided) / len(pairs), 4),
        "first_position_probability": round(statistics.fmean(first + second), 4),
        "seconds_per_label": round(seconds / len(pairs), 4),
        "seconds_per_question": round(seconds / (2 * len(pairs)), 4),
        "batch_size": args.batch_size,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

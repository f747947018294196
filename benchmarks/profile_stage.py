"""Where a stage's time goes: rebuild it under py-spy (`--force STAGE`) and print, for it and for each
`--also` stage the same command rebuilds after it, the share of that stage's samples (stacks inside
`rlhf_recipes/stages/<stage>.py`) by the deepest frame of rlhf_recipes in each stack (what of ours was
running, including the library calls it made), and by the deepest frame overall for the top entries.

    pip install py-spy
    python benchmarks/profile_stage.py recipes/smollm2_methods.yaml evaluation --run-dir runs/smollm2_methods
    RLHF_RECIPES_STORE=/tmp/profile_store python benchmarks/profile_stage.py \
        recipes/smollm2_sentiment.yaml samples --also reward_model --run-dir /tmp/profile ppo=null dpo=null

`--force` rebuilds every stage downstream of STAGE too: overrides like `ppo=null` leave out the ones not
wanted, and a store of its own keeps the rebuilt stages from replacing the shared ones. py-spy samples 20
times a second; each stage's own wall time is printed from run.json.
"""

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path


def deepest(frames: list[str], marker: str) -> str | None:
    """The innermost frame whose file path contains `marker`, as 'function (file:line)' without the line."""
    for frame in reversed(frames):
        if marker in frame:
            name, _, where = frame.partition(" (")
            return f"{name} ({where.rsplit(':', 1)[0].split(marker)[-1]})"
    return None


def summarize(raw: Path, stage: str) -> tuple[int, Counter, Counter]:
    ours, leaves, total = Counter(), Counter(), 0
    module = f"rlhf_recipes/stages/{stage}.py"
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or module not in stack:
            continue
        frames, samples = stack.split(";"), int(count)
        total += samples
        ours[deepest(frames, "rlhf_recipes/") or "(outside rlhf_recipes)"] += samples
        leaves[frames[-1].split(" (")[0]] += samples
    return total, ours, leaves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("stage")
    parser.add_argument("--also", action="append", default=[], help="Another stage the command rebuilds.")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("/tmp/profile_stage.txt"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    command = [sys.executable, "-m", "rlhf_recipes", "run", str(args.recipe), *args.overrides]
    command += ["--output-dir", str(args.run_dir), "--force", args.stage]
    subprocess.run(
        ["py-spy", "record", "--format", "raw", "--rate", "20", "-o", str(args.out), "--", *command], check=True
    )
    stages = json.loads((args.run_dir / "run.json").read_text())["stages"]
    for stage in [args.stage, *args.also]:
        total, ours, leaves = summarize(args.out, stage)
        print(f"\n## {stage}: {stages[stage]['seconds']:.1f} s; {total} samples under py-spy")
        print("\n| deepest rlhf_recipes frame | share |\n|---|---|")
        for name, count in ours.most_common(args.top):
            print(f"| {name} | {count / total:.1%} |")
        print("\n| innermost frame | share |\n|---|---|")
        for name, count in leaves.most_common(args.top):
            print(f"| {name} | {count / total:.1%} |")


if __name__ == "__main__":
    main()

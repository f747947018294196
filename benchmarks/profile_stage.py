"""Where one stage's time goes: rebuild it under py-spy (`--force STAGE` on a finished run) and print the
share of samples by the deepest frame of rlhf_recipes in each stack (what of ours was running, including
the library calls it made), and by the deepest frame overall for the top entries.

    pip install py-spy
    python benchmarks/profile_stage.py recipes/smollm2_methods.yaml evaluation --run-dir runs/smollm2_methods

The run directory must hold a finished run of the recipe (its other stages are reused or linked). py-spy
samples 20 times a second; the stage's own wall time is printed from run.json.
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


def summarize(raw: Path) -> tuple[int, Counter, Counter]:
    ours, leaves, total = Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
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
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("/tmp/profile_stage.txt"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    command = [sys.executable, "-m", "rlhf_recipes", "run", str(args.recipe), *args.overrides]
    command += ["--output-dir", str(args.run_dir), "--force", args.stage]
    subprocess.run(
        ["py-spy", "record", "--format", "raw", "--rate", "20", "-o", str(args.out), "--", *command], check=True
    )
    seconds = json.loads((args.run_dir / "run.json").read_text())["stages"][args.stage]["seconds"]
    total, ours, leaves = summarize(args.out)
    print(f"{args.stage}: {seconds:.1f} s; {total} samples of the whole command")
    print("\n| deepest rlhf_recipes frame | share |\n|---|---|")
    for name, count in ours.most_common(args.top):
        print(f"| {name} | {count / total:.1%} |")
    print("\n| innermost frame | share |\n|---|---|")
    for name, count in leaves.most_common(args.top):
        print(f"| {name} | {count / total:.1%} |")


if __name__ == "__main__":
    main()

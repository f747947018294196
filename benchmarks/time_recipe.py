"""Time a recipe end to end through the CLI, per stage, and print a markdown table.

    python benchmarks/time_recipe.py recipes/smoke.yaml [--repeats 3] [override ...]

Each repeat is a fresh `rlhf run` in a temporary directory. Stage times, peak resident memory
per stage and generated tokens come from the run's run.json (the pipeline measures them); the
total is wall time of the whole command, including Python start-up and imports.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--keep", type=Path, help="keep the last run, and what it printed (output.txt), in this (new) directory"
    )
    args = parser.parse_args()
    totals, stages = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as scratch:
            run_dir = Path(scratch) / "run"
            started = time.perf_counter()
            command = [
                sys.executable,
                "-m",
                "rlhf_recipes",
                "run",
                args.recipe,
                *args.overrides,
                "--output-dir",
                str(run_dir),
            ]
            output = subprocess.run(command, check=True, capture_output=True, text=True)
            totals.append(time.perf_counter() - started)
            (run_dir / "output.txt").write_text(output.stdout + output.stderr)  # what `rlhf run` printed
            stages.append(json.loads((run_dir / "run.json").read_text())["stages"])
            metrics = json.loads((run_dir / "metrics.json").read_text())
            if args.keep:
                shutil.rmtree(args.keep, ignore_errors=True)
                shutil.move(run_dir, args.keep)
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"Recipe `{args.recipe}` {' '.join(args.overrides)}; {args.repeats} run(s) on {machine()}\n")
    print("| stage | median seconds | new tokens/s | peak RSS (MiB) |\n|---|---|---|---|")
    for name in stages[0]:
        seconds = statistics.median(run[name]["seconds"] for run in stages)
        tokens = stages[0][name].get("generated_tokens") or 0
        speed = f"{tokens / seconds:,.0f}" if tokens and seconds else ""
        peak = max(run[name].get("peak_rss_mib") or 0 for run in stages)
        print(f"| {name} | {seconds:.1f} | {speed} | {peak:,.0f} |")
    print(
        f"| **whole command (wall)** | **{statistics.median(totals):.1f}** "
        f"(min {min(totals):.1f}, max {max(totals):.1f}) | | "
        f"{peak_mib:,.0f} |"
    )
    print(
        "\nLast run's results: "
        + ", ".join(
            f"{name} gold {p['gold_mean']:+.3f} (win rate {p['win_rate_vs_reference']:.2f}, KL {p['kl_mean']:.2f})"
            for name, p in metrics["policies"].items()
        )
        + f"; reward model held-out accuracy {metrics['reward_model']['heldout_accuracy']:.3f}"
    )


if __name__ == "__main__":
    main()

"""The wrapper's overhead: the smoke recipe's TRL stages through `rlhf run` vs the same TRL calls by hand.

    python benchmarks/overhead.py [--repeats 3]

One `rlhf run` of the smoke recipe (held-out curves off: they are evaluation the hand-written
script does not do) provides the inputs. Then, alternately, `rlhf run ... --force sft` rebuilds
sft, reward model, PPO and DPO through the wrapper, and benchmarks/plain_trl.py makes the same TRL
calls by hand on the same inputs. Prints per-stage medians and the ratio, as a markdown table.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from time_recipe import machine

STAGES = ["sft", "reward_model", "ppo", "dpo"]
RECIPE = ["recipes/smoke.yaml", "ppo.eval_every_updates=null", "dpo.eval_every_steps=null"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rlhf = [sys.executable, "-m", "rlhf_recipes", "run", *RECIPE]
    wrapper, plain = {stage: [] for stage in STAGES}, {stage: [] for stage in STAGES}
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(scratch) / "run"
        subprocess.run([*rlhf, "--output-dir", str(run_dir)], check=True, capture_output=True)
        for repeat in range(args.repeats):
            subprocess.run([*rlhf, "--output-dir", str(run_dir), "--force", "sft"], check=True, capture_output=True)
            stages = json.loads((run_dir / "run.json").read_text())["stages"]
            for stage in STAGES:
                wrapper[stage].append(stages[stage]["seconds"])
            out = subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).with_name("plain_trl.py")),
                    str(run_dir),
                    str(Path(scratch) / f"plain{repeat}"),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            for stage in STAGES:
                plain[stage].append(result["seconds"][stage])
    print(f"Smoke recipe's TRL stages, wrapper vs plain TRL; median of {args.repeats} on {machine()}\n")
    print("| stage | rlhf run (s) | plain TRL (s) | ratio |\n|---|---|---|---|")
    for stage in STAGES:
        w, p = statistics.median(wrapper[stage]), statistics.median(plain[stage])
        print(f"| {stage} | {w:.2f} | {p:.2f} | {w / p:.3f} |")
    w_total = statistics.median(sum(wrapper[s][i] for s in STAGES) for i in range(args.repeats))
    p_total = statistics.median(sum(plain[s][i] for s in STAGES) for i in range(args.repeats))
    print(f"| **total** | **{w_total:.2f}** | **{p_total:.2f}** | **{w_total / p_total:.3f}** |")
    print(
        f"\nRuns: wrapper {[round(sum(wrapper[s][i] for s in STAGES), 2) for i in range(args.repeats)]}, "
        f"plain {[round(sum(plain[s][i] for s in STAGES), 2) for i in range(args.repeats)]}"
    )


if __name__ == "__main__":
    main()

"""Seconds and peak memory per 1,000 rollouts of the online methods (PPO, RLOO, GRPO, online DPO) on SmolLM2.

    python benchmarks/online_methods.py RUN_DIR [--rollouts 256] [--methods ppo rloo grpo]

RUN_DIR is a finished run of recipes/smollm2_methods.yaml (its prompts, base model and reward model
are the inputs). Each method trains in a fresh process, as the pipeline calls it (LoRA, bfloat16 where native, the
recipe's settings, held-out curves off), for about `--rollouts` sampled responses; the table gives
seconds and peak resident memory of that process, and seconds per 1,000 rollouts. A rollout is one
sampled response scored by the reward model; PPO also runs its value model and PPO epochs over each.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from time_recipe import machine

RECIPE = Path("recipes/smollm2_methods.yaml")


def sections(rollouts: int, train_prompts: int) -> dict[str, str]:
    """Each method's recipe override for about `rollouts` rollouts, the rest as in smollm2_methods.yaml."""
    per_epoch = {"rloo": 4 * train_prompts, "grpo": 4 * train_prompts, "online_dpo": 2 * train_prompts}
    overrides = {name: f"{name}.epochs={rollouts / per_epoch[name]:.6g}" for name in per_epoch}
    return overrides | {"ppo": f"ppo.total_episodes={rollouts}"}


def one(run_dir: Path, method: str, rollouts: int) -> dict:
    """Runs in a child process: the method's stage for about `rollouts` rollouts; returns cost and counts."""
    import tempfile

    from rlhf_recipes.cli import _quiet_libraries
    from rlhf_recipes.config.loader import load_recipe
    from rlhf_recipes.run.pipeline import plan
    from rlhf_recipes.runtime.progress import peak_memory_mib, reset_peak_memory
    from rlhf_recipes.runtime.prompt_files import read_prompts

    _quiet_libraries(False)
    train = len(read_prompts(run_dir / "prompts", "train"))
    override = sections(rollouts, train)[method]
    recipe = load_recipe(
        RECIPE, [override, f"{method}.{'eval_every_updates' if method == 'ppo' else 'eval_every_steps'}=null"]
    )
    step = next(step for step in plan(recipe, run_dir) if step.name == method)  # the pipeline's own call
    reset_peak_memory()
    before = peak_memory_mib()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        summary = step.function(**step.arguments, out_dir=Path(out))
    seconds = time.perf_counter() - started
    return {"peak_mib": peak_memory_mib(), "before_mib": before, "seconds": seconds, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--rollouts", type=int, default=256)
    parser.add_argument("--methods", nargs="+", default=["ppo", "rloo", "grpo", "online_dpo"])
    parser.add_argument("--child", nargs=1)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one(args.run_dir, args.child[0], args.rollouts)))
        return
    print(f"Online methods on SmolLM2-135M-Instruct (LoRA), about {args.rollouts} rollouts each, on {machine()}\n")
    print("| method | rollouts | seconds | s / 1,000 rollouts | peak RSS (MiB) | of which before training (MiB) |")
    print("|---|---|---|---|---|---|")
    for method in args.methods:
        command = [sys.executable, __file__, str(args.run_dir), "--rollouts", str(args.rollouts), "--child", method]
        result = json.loads(
            subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        )
        done = result["summary"]["training_generations"]
        print(f"| {method} | {done} | {result['seconds']:.1f} | {1000 * result['seconds'] / done:,.0f} "
              f"| {result['peak_mib']:,.0f} | {result['before_mib']:,.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()

"""Peak memory of the PPO stage: full fine-tuning vs LoRA vs LoRA on a 4-bit base (QLoRA).

    python benchmarks/ppo_memory.py RUN_DIR [--updates 2] [--variants full lora qlora]

RUN_DIR is a finished run of recipes/smollm2_sentiment.yaml (its prompts, base model and reward
model are the inputs). Each variant trains PPO for a few updates in a fresh process (held-out curves
off) and reports the peak resident memory of that process, what it held before PPO started
(Python, torch and the libraries), and seconds per PPO update. Full fine-tuning keeps a second copy
of the policy as the reference; LoRA uses the policy with its adapter disabled.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from time_recipe import machine

VARIANTS = {  # short name: (table row, recipe overrides)
    "full": ("full fine-tuning", ["model.lora=null", "reward_model.lora=null"]),
    "lora": ("LoRA r=16", []),
    "qlora": ("LoRA r=16 on a 4-bit NF4 base", ["model.load_in_4bit=true", "reward_model.load_in_4bit=true"]),
}


def one(run_dir: Path, overrides: list[str], updates: int) -> dict:
    """Runs in a child process: PPO for `updates` updates; returns memory and time."""
    import tempfile

    from rlhf_recipes.cli import _quiet_libraries
    from rlhf_recipes.config.loader import load_recipe
    from rlhf_recipes.run.pipeline import plan
    from rlhf_recipes.runtime.progress import peak_memory_mib, reset_peak_memory

    _quiet_libraries(False)
    recipe = load_recipe(
        Path("recipes/smollm2_sentiment.yaml"),
        overrides + [f"ppo.total_episodes={updates * 32}", "ppo.rollouts_per_update=32", "ppo.eval_every_updates=null"],
    )
    step = next(step for step in plan(recipe, run_dir) if step.name == "ppo")  # the pipeline's own PPO call
    reset_peak_memory()
    before = peak_memory_mib()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        step.function(**step.arguments, out_dir=Path(out))
    return {
        "peak_mib": peak_memory_mib(),
        "before_mib": before,
        "seconds_per_update": (time.perf_counter() - started) / updates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--updates", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--child", nargs="*")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one(args.run_dir, args.child, args.updates)))
        return
    print(f"PPO on SmolLM2-135M-Instruct, 32 rollouts a update, {args.updates} updates, on {machine()}\n")
    print(
        "| policy, reward and value models | peak RSS (MiB) | of which before PPO (MiB) | PPO's own (MiB) "
        "| s / update |"
    )
    print("|---|---|---|---|---|")
    for name, overrides in (VARIANTS[variant] for variant in args.variants):
        command = [sys.executable, __file__, str(args.run_dir), "--updates", str(args.updates), "--child", *overrides]
        result = json.loads(
            subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        )
        print(
            f"| {name} | {result['peak_mib']:,.0f} | {result['before_mib']:,.0f} "
            f"| {result['peak_mib'] - result['before_mib']:,.0f} "
            f"| {result['seconds_per_update']:.1f} |"
        )


if __name__ == "__main__":
    main()

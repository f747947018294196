"""`rlhf run --launcher accelerate`: the command that starts the recipe's processes with `accelerate launch`.

Every process then runs `rlhf run` itself (distributed.py says how they share the work). On a
machine without GPUs, the processes train on CPUs and talk through gloo.
"""

import os
import sys

from ..errors import RecipeError
from .preflight import read_accelerate_config


def launch_command(recipe, launcher: str | None, num_processes: int | None) -> list[str] | None:
    """The command prefix (up to and including `-m rlhf_recipes run`) that starts the processes, or None
    when this process should run the recipe itself: one process, or already started by a launcher."""
    config = recipe.compute.accelerate_config
    if launcher not in (None, "none", "accelerate"):
        raise RecipeError(f"--launcher: {launcher!r} is not a launcher. Fix: --launcher accelerate, or leave it out.")
    if launcher is None:
        launcher = "accelerate" if config is not None else "none"
    if launcher == "none":
        if num_processes not in (None, 1):
            raise RecipeError("--num-processes: needs --launcher accelerate. Fix: add --launcher accelerate.")
        return None
    if "LOCAL_RANK" in os.environ or "WORLD_SIZE" in os.environ:
        return None  # already one of the launched processes
    check_batches_split(recipe, num_processes or processes_in(config))
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if config is not None:
        command += ["--config_file", str(config)]
        if num_processes is not None:
            command += ["--num_processes", str(num_processes)]
    else:
        processes = num_processes or 1
        command += [
            "--num_processes",
            str(processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
        ]
        if processes > 1:  # torch.distributed.run: DDP on GPUs, or gloo between CPU processes
            command += ["--multi_gpu", "--main_process_port", str(free_port())]
    return command + ["-m", "rlhf_recipes", "run"]


def free_port() -> int:
    """A TCP port nobody listens on now, for the processes' rendezvous (the default, 29500, may be taken
    by another run on the same machine)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_in(accelerate_config) -> int:
    """num_processes of an accelerate config file (1 when it does not say)."""

    if accelerate_config is None:
        return 1
    return int(read_accelerate_config(accelerate_config).get("num_processes", 1))


def check_batches_split(recipe, processes: int) -> None:
    """Every batch of an optimizer step is shared equally among the processes (training.trainer.per_process):
    refuse, before anything starts, a batch that does not split."""
    sizes = {
        "sft.batch_size": recipe.sft and recipe.sft.batch_size,
        "reward_model.batch_size": recipe.reward_model.batch_size,
    }
    for name, method in recipe.methods().items():
        sizes |= {f"{name}.{key}": getattr(method, key) for key in method.BATCH_KEYS}
    uneven = [f"{key}={size}" for key, size in sizes.items() if size and size % processes]
    if uneven:
        raise RecipeError(
            f"{', '.join(uneven)}: a batch cannot be split evenly among {processes} processes. "
            f"Fix: make each a multiple of {processes}, or use another number of processes."
        )

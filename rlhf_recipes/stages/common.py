"""What every training stage hands TRL, set explicitly: TRL's own defaults (bf16 and gradient
checkpointing on, logging to every installed tracker) are wrong for a CPU and for a quiet tool."""

import json
import shutil
from pathlib import Path

from ..run.distributed import is_main, world_size
from ..errors import RecipeError
from ..models.loading import device_for
from ..config.schema import Compute


def trainer_arguments(compute: Compute, out_dir: Path, seed: int) -> dict:
    """Keyword arguments shared by SFTConfig, RewardConfig, DPOConfig and PPOConfig."""
    return {
        "output_dir": str(out_dir / "checkpoints"),
        "use_cpu": device_for(compute) == "cpu",
        "bf16": compute.bf16,
        "gradient_checkpointing": compute.gradient_checkpointing,
        "report_to": [],
        "seed": seed,
        "data_seed": seed,
        "save_strategy": "steps" if compute.checkpoint_every_steps else "no",
        "save_steps": compute.checkpoint_every_steps or 500,
        "save_total_limit": 2,
        "logging_steps": 1,
        "disable_tqdm": True,
        "log_level": "passive",  # leave library logging as the CLI set it (a Trainer sets every
        "log_level_replica": "passive",  # process but the main one to "warning" by default)
        "dataloader_num_workers": 0,
        "push_to_hub": False,
    }


def resume_point(out_dir: Path) -> str | None:
    """The checkpoint an interrupted run of this stage left in out_dir/checkpoints, if any."""
    from ..run.directory import latest_checkpoint

    return latest_checkpoint(out_dir / "checkpoints")


def quiet(trainer) -> None:
    """Stop the trainer printing a dict per logging step (the logs are saved by `save_logs` instead), and
    show its steps as a bar of the running stage."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from ..run.progress import TrainingProgress

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(TrainingProgress())


def save_logs(trainer, out_dir: Path) -> list[dict]:
    """Write the trainer's log history (one dict per logged step) to out_dir/log_history.json."""
    history = trainer.state.log_history
    if is_main():
        (out_dir / "log_history.json").write_text(json.dumps(history, indent=1) + "\n")
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    return history


def shards_parameters(trainer) -> bool:
    """Under DeepSpeed ZeRO-3 or FSDP no process holds the whole model, and saving it gathers the shards."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return True
    plugin = trainer.accelerator.state.deepspeed_plugin if getattr(trainer, "is_deepspeed_enabled", False) else None
    return plugin is not None and plugin.zero_stage == 3


def save_sharded(trainer, tokenizer, out_dir: Path) -> None:
    """Gather a sharded model and save full weights to out_dir: every process takes part, the main one writes."""
    trainer.save_model(str(out_dir))
    if is_main():
        tokenizer.save_pretrained(out_dir)


def per_process(batch_size: int, key: str) -> int:
    """A recipe's batch size is the whole batch of one optimizer step; each of several processes takes
    an equal share, so that any number of processes trains on the same batches."""
    processes = world_size()
    if batch_size % processes:
        raise RecipeError(
            f"{key}: {batch_size} cannot be split evenly among {processes} processes. Fix: make it a multiple of {processes}."
        )
    return batch_size // processes

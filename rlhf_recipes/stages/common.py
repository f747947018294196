"""What every training stage hands TRL, set explicitly: TRL's own defaults (bf16 and gradient
checkpointing on, logging to every installed tracker) are wrong for a CPU and for a quiet tool."""

import json
import shutil
from pathlib import Path

from ..models import device_for
from ..recipe import Compute


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
        "dataloader_num_workers": 0,
        "push_to_hub": False,
    }


def resume_point(out_dir: Path) -> str | None:
    """The checkpoint an interrupted run of this stage left in out_dir/checkpoints, if any."""
    from ..run_directory import latest_checkpoint

    return latest_checkpoint(out_dir / "checkpoints")


def quiet(trainer) -> None:
    """Stop the trainer printing a dict per logging step; the logs are saved by `save_logs` instead."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


def save_logs(trainer, out_dir: Path) -> list[dict]:
    """Write the trainer's log history (one dict per logged step) to out_dir/log_history.json."""
    history = trainer.state.log_history
    (out_dir / "log_history.json").write_text(json.dumps(history, indent=1) + "\n")
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    return history

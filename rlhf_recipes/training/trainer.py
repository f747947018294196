"""The shape every training stage follows around its one TRL trainer:

1. `load_policy_and_reference`: the tokenizer, the policy to train and, for full fine-tuning, a frozen
   copy as the reference (with LoRA the reference is the policy with its adapter disabled);
2. `trainer_arguments` (and `offline_arguments` for the methods that learn from the labeled pairs):
   what every TRL config gets, set explicitly (TRL's own defaults, bf16 and gradient checkpointing on
   and logging to every installed tracker, are wrong for a CPU and for a quiet tool);
3. `fit`: train with one progress bar and no printed dicts, a stop at the first NaN or infinity,
   the held-out curve, resume from the stage's last checkpoint, and the log history saved;
4. `save_trained_policy`: full weights or a LoRA adapter (gathered first when sharded).

A stage builds its TRL config by hand from its recipe section (never `**`-splatting YAML into TRL),
builds the trainer, and calls these.
"""

import json
from pathlib import Path

from ..config.schema import Compute
from ..errors import RecipeError
from ..models.loading import Loading, Tuning, device_for, load_policy, load_tokenizer, save_policy
from ..runtime.directory import latest_checkpoint
from ..runtime.distributed import is_main, world_size
from ..runtime.progress import TrainingProgress
from ..runtime.tracking import finish_trackers, prepare_trackers, stage_location, to_trackers
from .curve import HeldoutCurve
from .health import FiniteTraining


def trainer_arguments(compute: Compute, out_dir: Path, seed: int) -> dict:
    """Keyword arguments shared by every TRL config (SFTConfig, RewardConfig, DPOConfig, PPOConfig, ...)."""
    run_dir, stage_name = stage_location(out_dir)
    return {
        "output_dir": str(out_dir / "checkpoints"),
        "use_cpu": device_for(compute) == "cpu",
        "bf16": compute.bf16,
        "activation_checkpointing": compute.gradient_checkpointing,  # transformers 5.24's gradient_checkpointing
        "report_to": list(compute.report_to),
        "run_name": f"{run_dir.name}/{stage_name}",
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


def load_policy_and_reference(policy, loading: Loading, tuning: Tuning, compute: Compute, reference: bool = True):
    """(tokenizer, policy model, reference model or None, device) for a training stage: the reference is a
    second copy for full fine-tuning; with LoRA, or when the method keeps no reference, it is None (the
    policy with its adapter disabled stands in for it where one is needed)."""
    device = device_for(compute)
    tokenizer = load_tokenizer(str(policy), loading.trust_remote_code)
    network = load_policy(str(policy), loading, device)
    frozen = load_policy(str(policy), loading, device) if reference and tuning.lora is None else None
    return tokenizer, network, frozen, device


def offline_arguments(method, compute: Compute, out_dir: Path, seed: int) -> dict:
    """What the TRL configs of the methods that learn from the labeled pairs (DPO, KTO, SimPO, ORPO) share:
    trainer_arguments, the method's epochs, peak learning rate (cosine decay after a 5% warm-up), batch
    (split among processes) and length limit."""
    return trainer_arguments(compute, out_dir, seed) | {
        "num_train_epochs": method.epochs,
        "learning_rate": method.learning_rate,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.05,
        "per_device_train_batch_size": per_process(method.batch_size, f"{method.stage}.batch_size"),
        "max_length": method.max_length_tokens,
    }


def online_arguments(method, compute: Compute, out_dir: Path, seed: int, responses_per_prompt: int) -> dict:
    """What the TRL configs of RLOO and GRPO share: trainer_arguments, the method's epochs over the train
    prompts and peak learning rate, and its batch in responses (TRL counts completions: prompts_per_step
    times responses_per_prompt, split among processes), with its length limit and temperature."""
    responses = method.prompts_per_step * responses_per_prompt
    return trainer_arguments(compute, out_dir, seed) | {
        "num_train_epochs": method.epochs,
        "learning_rate": method.learning_rate,
        "per_device_train_batch_size": per_process(responses, f"{method.stage}.prompts_per_step"),
        "num_generations": responses_per_prompt,
        "max_completion_length": method.max_new_tokens,
        "temperature": method.temperature,
    }


def last_logged(history: list[dict], key: str):
    """The last value TRL logged under `key`, or None."""
    return next((entry[key] for entry in reversed(history) if key in entry), None)


def per_process(batch_size: int, key: str) -> int:
    """A recipe's batch size is the whole batch of one optimizer step; each of several processes takes
    an equal share, so that any number of processes trains on the same batches."""
    processes = world_size()
    if batch_size % processes:
        raise RecipeError(
            f"{key}: {batch_size} cannot be split evenly among {processes} processes. "
            f"Fix: make it a multiple of {processes}."
        )
    return batch_size // processes


def resume_point(out_dir: Path) -> str | None:
    """The checkpoint an interrupted run of this stage left in out_dir/checkpoints, if any."""
    return latest_checkpoint(out_dir / "checkpoints")


def fit(
    trainer,
    *,
    stage: str,
    out_dir: Path,
    learning_rate: float,
    curve: HeldoutCurve | None = None,
    resumable: bool = True,
    curve_file: Path | None = None,
    curve_offset: int = 0,
) -> list[dict]:
    """Train `trainer` as every stage does and return its log history (also saved to out_dir/log_history.json).

    stage: the recipe section named in a divergence message; curve: a held-out curve already attached
    to the policy and reference, saved to `curve_file` (default out_dir/curve.json) as it grows, its
    steps counted after `curve_offset` earlier ones; resumable: the trainer can resume from a Trainer
    checkpoint in out_dir/checkpoints (TRL's PPO cannot).
    """
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)  # the logs are saved instead of printed as dicts
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(TrainingProgress())
    trainer.add_callback(FiniteTraining(stage, learning_rate))
    checkpoint = resume_point(out_dir) if resumable else None
    prepare_trackers(trainer, out_dir, fresh=checkpoint is None)
    if curve is not None:
        curve.log = (lambda logs: to_trackers(trainer, logs)) if trainer.args.report_to else None
        trainer.add_callback(curve.saved_to(curve_file or out_dir / "curve.json", checkpoint, curve_offset))
        # first in line, so that its last point (measured at train end) reaches the trackers before they close
        callbacks = trainer.callback_handler.callbacks
        callbacks.insert(0, callbacks.pop(callbacks.index(curve)))
    try:
        if resumable:
            trainer.train(resume_from_checkpoint=checkpoint)
        else:  # TRL's PPOTrainer.train takes no checkpoint
            trainer.train()
    finally:
        finish_trackers(trainer.args.report_to)
    history = trainer.state.log_history
    if is_main():  # checkpoints stay until the stage is published: a crash before that resumes from them
        (out_dir / "log_history.json").write_text(json.dumps(history, indent=1) + "\n")
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


def save_trained_policy(
    trainer, trained, tokenizer, out_dir: Path, base: str, loading: Loading, tuning: Tuning
) -> None:
    """Save a tuned policy to out_dir: full weights, or its LoRA adapter on `base` (and merged too with
    model.save_merged); gathered from every process first when the trainer shards parameters."""
    if shards_parameters(trainer):
        save_sharded(trainer, tokenizer, out_dir)
    elif is_main():
        save_policy(trained, tokenizer, out_dir, base, loading, merged=tuning.save_merged)


def final_loss(history: list[dict]) -> float | None:
    """The last logged training loss."""
    losses = [entry["loss"] for entry in history if "loss" in entry]
    return losses[-1] if losses else None

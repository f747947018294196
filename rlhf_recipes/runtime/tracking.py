"""Experiment trackers (`compute.report_to`): where each stage's run is named and written, the held-out
curve's points and the final evaluation sent to them.

Training stages log through the transformers callbacks their TRL trainer builds from `report_to`, as
the run '<run>/<stage>'; the final evaluation goes through the same callbacks as '<run>/evaluation', so
every tracker gets it the same way. TensorBoard's event files are in <run directory>/tensorboard/<stage>:
`tensorboard --logdir runs/NAME/tensorboard`. Metric names are the tracker callbacks' own: TensorBoard,
W&B and trackio show what is not an eval metric under `train/` (`train/heldout/gold_mean`).
"""

import contextlib
import shutil
import sys
from pathlib import Path

from rich.console import Console

from ..console import styled

# What of each policy's evaluation a tracker shows: the numbers the report's tables lead with.
POLICY_KEYS = (
    "gold_mean",
    "reward_model_mean",
    "kl_mean",
    "win_rate_vs_reference",
    "reward_model_win_rate_vs_reference",  # a run without gold
    "mean_length_words",
    "distinct_2",
)

# Trackers that keep one run open per process until told to finish it: without finish(), every later
# stage would log into the first stage's run.
FINISHED_EXPLICITLY = ("wandb", "swanlab")


def stage_location(out_dir: Path) -> tuple[Path, str]:
    """(run directory, stage path) of a stage's output directory: runs/smoke/.dpo.partial -> (runs/smoke,
    'dpo'); a directory inside it adds its path, without `checkpoints` (rsft's rounds: 'rsft/round-1').
    Trackers name the stage's run '<run>/<stage>'; TensorBoard writes to <run directory>/tensorboard/<stage>."""
    parts = out_dir.resolve().parts
    for index, part in enumerate(parts):
        if part.startswith(".") and part.endswith(".partial") and index:
            inner = [p for p in parts[index + 1 :] if p != "checkpoints"]
            return Path(*parts[:index]), "/".join([part[1 : -len(".partial")], *inner])
    return out_dir.resolve().parent, out_dir.name


def tensorboard_dir(out_dir: Path) -> Path:
    run_dir, stage = stage_location(out_dir)
    return run_dir / "tensorboard" / stage


def prepare_trackers(trainer, out_dir: Path, fresh: bool) -> None:
    """Point a TensorBoard callback at tensorboard_dir (not the trainer's checkpoints, deleted at the end);
    a stage trained afresh (not resumed) first drops the event files an earlier build of it left there."""
    from transformers.integrations.integration_utils import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            directory = tensorboard_dir(out_dir)
            if fresh:
                shutil.rmtree(directory, ignore_errors=True)
            callback.logging_dir = str(directory)


def to_trackers(trainer, logs: dict) -> None:
    """Hand `logs` to the trainer's experiment-tracker callbacks alone, at its current step: not through
    trainer.log, which TRL's trainers override to flush their own running metrics into whatever is logged."""
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    trackers = tuple(INTEGRATION_TO_CALLBACK.values())
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, trackers):
            callback.on_log(trainer.args, trainer.state, trainer.control, logs=logs)


def finish_trackers(report_to: list[str]) -> None:
    """End the open run of each tracker that keeps one per process (W&B, SwanLab), so the next stage
    starts its own. Their modules are imported only once a callback has started a run."""
    for name in FINISHED_EXPLICITLY:
        module = sys.modules.get(name)
        if name in report_to and module is not None:
            with contextlib.suppress(Exception):  # nothing was open to finish
                module.finish()


def final_scalars(metrics: dict) -> dict[str, float]:
    """metrics.json flattened to tracker scalars: policy/<name>/<key>, best_of_n/<N>/gold_mean and
    kl_bound, reward_model/heldout_accuracy."""
    scalars = {
        f"policy/{name}/{key}": float(policy[key])
        for name, policy in metrics["policies"].items()
        for key in POLICY_KEYS
        if isinstance(policy.get(key), (int, float))
    }
    for n, row in (metrics.get("best_of_n") or {}).items():
        scalars[f"best_of_n/{n}/gold_mean"] = float(row["gold_mean"])
        scalars[f"best_of_n/{n}/kl_bound"] = float(row["kl_bound"])
    accuracy = (metrics.get("reward_model") or {}).get("heldout_accuracy")
    if isinstance(accuracy, (int, float)):
        scalars["reward_model/heldout_accuracy"] = float(accuracy)
    return scalars


def log_final_metrics(report_to: list[str], run_dir: Path, metrics: dict, cpu: bool, console: Console) -> None:
    """Log final_scalars(metrics) to each tracker as the run <run>/evaluation (TensorBoard: event files in
    run_dir/tensorboard/evaluation, replacing an earlier evaluation's). The report is already written, so
    a tracker that fails here is a warning, not a failed run."""
    from transformers import TrainerControl, TrainerState, TrainingArguments
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    run_dir = run_dir.resolve()
    args = TrainingArguments(
        output_dir=str(run_dir / "tensorboard"),
        report_to=list(report_to),
        run_name=f"{run_dir.name}/evaluation",
        use_cpu=cpu,
    )
    state, control = TrainerState(is_world_process_zero=True, is_local_process_zero=True), TrainerControl()
    for name in report_to:
        try:
            callback = INTEGRATION_TO_CALLBACK[name]()
            if name == "tensorboard":
                callback.logging_dir = str(run_dir / "tensorboard" / "evaluation")
                shutil.rmtree(callback.logging_dir, ignore_errors=True)
            callback.on_init_end(args, state, control)
            callback.on_train_begin(args, state, control)
            callback.on_log(args, state, control, logs=final_scalars(metrics))
            callback.on_train_end(args, state, control)
        except Exception as error:  # noqa: BLE001 - a tracker's failure must not fail a finished run
            console.print(styled("warning:", "yellow"), f"the final evaluation did not reach {name}: {error}")
        finally:
            finish_trackers([name])

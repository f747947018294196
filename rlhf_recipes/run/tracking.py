"""The final evaluation, sent to the experiment trackers of `compute.report_to` as one more run
(<run>/evaluation), through the same transformers callbacks the training stages log with, so that
every tracker transformers supports gets it the same way. TensorBoard's event files of every stage
are in <run directory>/tensorboard/<stage>: `tensorboard --logdir runs/NAME/tensorboard`."""

from pathlib import Path

# What of each policy's evaluation a tracker shows: the numbers the report's tables lead with.
POLICY_KEYS = ("gold_mean", "reward_model_mean", "kl_mean", "win_rate_vs_reference", "mean_length_words", "distinct_2")


def final_scalars(metrics: dict) -> dict[str, float]:
    """metrics.json flattened to tracker scalars: policy/<name>/<key>, best_of_n/<N>/gold_mean and
    reward_model/heldout_accuracy."""
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


def log_final_metrics(report_to: list[str], run_dir: Path, metrics: dict) -> None:
    """Log final_scalars(metrics) to each tracker as the run <run>/evaluation (TensorBoard: event files in
    run_dir/tensorboard/evaluation)."""
    from transformers import TrainerControl, TrainerState, TrainingArguments
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    args = TrainingArguments(
        output_dir=str(run_dir / "tensorboard"), report_to=list(report_to), run_name=f"{run_dir.name}/evaluation"
    )
    state, control = TrainerState(is_world_process_zero=True, is_local_process_zero=True), TrainerControl()
    for name in report_to:
        callback = INTEGRATION_TO_CALLBACK[name]()
        if name == "tensorboard":
            callback.logging_dir = str(run_dir / "tensorboard" / "evaluation")
        callback.on_train_begin(args, state, control)
        callback.on_log(args, state, control, logs=final_scalars(metrics))
        callback.on_train_end(args, state, control)

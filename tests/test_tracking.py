"""Where trackers see each stage: run names and TensorBoard directories, and the final evaluation's scalars.
(A whole run logging to TensorBoard is tests/test_model_labelers.py's last test.)"""

from pathlib import Path

from rlhf_recipes.runtime.tracking import final_scalars, stage_location


def test_a_stage_is_named_after_its_run_and_itself(tmp_path):
    run = tmp_path / "runs" / "smoke"
    assert stage_location(run / ".dpo.partial") == (run.resolve(), "dpo")
    assert stage_location(run / ".dpo_ipo.partial") == (run.resolve(), "dpo_ipo")
    assert stage_location(run / ".rsft.partial" / "checkpoints" / "round-1") == (run.resolve(), "rsft/round-1")
    assert stage_location(Path("elsewhere") / "stage") == (Path("elsewhere").resolve(), "stage")


def test_final_scalars_name_each_policy_and_best_of_n():
    metrics = {
        "policies": {
            "reference": {"gold_mean": 0.1, "kl_mean": 0.0, "win_rate_vs_reference": None},
            "dpo": {"gold_mean": 0.4, "kl_mean": 1.5, "win_rate_vs_reference": 0.7, "gold_ci95": [0.3, 0.5]},
        },
        "best_of_n": {"4": {"gold_mean": 0.45, "kl_bound": 0.636}},
        "reward_model": {"heldout_accuracy": 0.9},
    }
    assert final_scalars(metrics) == {
        "policy/reference/gold_mean": 0.1,
        "policy/reference/kl_mean": 0.0,
        "policy/dpo/gold_mean": 0.4,
        "policy/dpo/kl_mean": 1.5,
        "policy/dpo/win_rate_vs_reference": 0.7,
        "best_of_n/4/gold_mean": 0.45,
        "best_of_n/4/kl_bound": 0.636,
        "reward_model/heldout_accuracy": 0.9,
    }

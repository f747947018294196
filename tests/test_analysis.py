"""The report's judgements, by hand: over-optimization flags and best-of-N selection."""

import pytest

from rlhf_recipes.reporting.analysis import best_of_n_summary, curve_overoptimization, policy_summary


def rows(gold, learned, kl, shift=0, prompts=20):
    """Two responses per prompt with per-prompt noise in {-0.1, 0, 0.1}; another `shift`, other noise,
    so paired differences have a spread."""
    out = []
    for i in range(prompts):
        wobble = 0.1 * ((i * 7 + shift) % 3 - 1)
        for sample in range(2):
            out.append({"prompt_index": i, "sample": sample, "gold": gold + wobble, "reward_model": learned + wobble,
                        "kl": kl + wobble, "words": 10, "response": f"r{i}{sample}"})  # fmt: skip
    return out


def test_a_policy_is_flagged_only_with_evidence_against_its_reference():
    reference = rows(0.0, 0.0, 0.0, shift=1)
    assert policy_summary(rows(0.5, 1.0, 2.0), reference)["overoptimization"]["state"] == "fine"
    fell = policy_summary(rows(-0.3, 1.0, 2.0), reference)["overoptimization"]
    assert fell["state"] == "over-optimized", "gold fell below the reference (its peak) while the learned reward rose"
    assert "against the reference" in fell["evidence"]
    assert policy_summary(rows(-0.3, 0.0, 0.0), reference)["overoptimization"]["state"] == "did not move"


def test_curve_flags_gold_falling_from_its_peak_while_the_learned_reward_rises_past_it():
    def point(step, gold, learned, kl):
        shape = [0.1 if i % 2 else -0.1 for i in range(20)]
        return {"step": step, "gold_mean": gold, "gold": [gold + s for s in shape],
                "reward_model": [learned + s for s in shape], "kl": [kl + s for s in shape]}  # fmt: skip

    rising = [point(0, 0.0, 0.0, 0.0), point(1, 0.5, 1.0, 1.0), point(2, 0.6, 2.0, 2.0)]
    assert curve_overoptimization(rising)["state"] == "fine"
    peaked = [point(0, 0.0, 0.0, 0.0), point(1, 0.6, 1.0, 1.0), point(2, 0.3, 2.0, 2.0)]
    flag = curve_overoptimization(peaked)
    assert (flag["state"], flag["compared_with"]) == ("over-optimized", [0, 1]), "first and middle, named in advance"
    both_fell = [point(0, 0.0, 0.0, 0.0), point(1, 0.6, 2.0, 1.0), point(2, 0.3, 1.0, 2.0)]
    assert curve_overoptimization(both_fell)["state"] != "over-optimized", "the reward model saw the drop too"
    old_format = [{"step": 0, "gold_mean": 0.0}, {"step": 1, "gold_mean": 0.5}]
    assert curve_overoptimization(old_format)["state"] == "inconclusive"


def test_best_of_n_picks_the_highest_learned_reward_among_the_first_n():
    """Prompt 0 samples (learned, gold): (1, 0.1) (3, 0.9) (2, 0.5) (5, -1).
    N=1 picks sample 0 (gold 0.1); N=2 picks sample 1 (0.9); N=4 picks sample 3 (-1): a reward-model error."""
    samples = [(1, 0.1), (3, 0.9), (2, 0.5), (5, -1.0)]
    rows = [{"prompt_index": 0, "sample": i, "reward_model": r, "gold": g} for i, (r, g) in enumerate(samples)]
    reference = [{"prompt_index": 0, "gold": 0.1}]
    summary = best_of_n_summary(rows, reference, [1, 2, 4])
    assert [summary[n]["gold_mean"] for n in ("1", "2", "4")] == [0.1, 0.9, -1.0]
    assert [summary[n]["win_rate_vs_reference"] for n in ("1", "2", "4")] == [0.5, 1.0, 0.0]


@pytest.mark.ppo
def test_best_of_n_reuses_held_out_samples_only_from_the_same_distribution(in_repo):
    from rlhf_recipes.config.loader import load_recipe
    from rlhf_recipes.stages.evaluation import samples_serve_best_of_n

    from .helpers import REPO

    def serve(*overrides):
        recipe = load_recipe(REPO / "recipes/smoke.yaml", list(overrides))
        return samples_serve_best_of_n(recipe.samples, recipe.evaluation)

    same = ["samples.responses_per_prompt=8", "evaluation.best_of_n=[1, 4, 8]"]
    assert serve(*same)
    assert not serve("samples.responses_per_prompt=8", "evaluation.best_of_n=[1, 16]"), "too few samples"
    assert not serve(*same, "evaluation.best_of_n=[]"), "no best-of-N at all"
    assert not serve(*same, "evaluation.temperature=0.7"), "another temperature"
    assert not serve(*same, "samples.top_p=0.9"), "nucleus sampling is another distribution"
    assert not serve(*same, "evaluation.max_new_tokens=48"), "another length limit"


def test_scored_held_out_samples_are_numbered_per_prompt(tmp_path):
    import json

    from rlhf_recipes.stages.evaluation import read_scored_heldout_samples

    rows = [{"prompt_index": i, "gold": 0.0, "reward_model": 0.0} for i in (0, 0, 1, 0, 1)]
    (tmp_path / "scored.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [(r["prompt_index"], r["sample"]) for r in read_scored_heldout_samples(tmp_path / "scored.jsonl")] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (0, 2),
        (1, 1),
    ]

"""Reward-model ensembles (reward_model.ensemble): the aggregation rules on known scores, an ensemble of one is the
single reward model, every consumer of the learned reward reads the aggregate, and a whole run with one."""

import copy
import json
import shutil

import pytest
import torch

from rlhf_recipes.config.schema import Ensemble
from rlhf_recipes.generation.scoring import reward_scores
from rlhf_recipes.models.ensemble import load_reward, member_paths
from rlhf_recipes.models.ensemble_module import Aggregation, RewardEnsemble, aggregate
from rlhf_recipes.models.loading import Loading, Tuning, load_reward_model, load_tokenizer
from rlhf_recipes.stages.reward_ensemble import onto_first, store_ensemble
from rlhf_recipes.training.curve import Curve, HeldoutCurve
from rlhf_recipes.training.rewards import LearnedReward
from tests.helpers import PROMPTS, rlhf_run
from tests.test_methods import SECTIONS, train

RULES = ("mean", "min", "uncertainty", "single")
RESPONSES = [" was great and lovely .", " was awful .", " was nice .", " was rude and dirty .", "", " was"]


def test_aggregation_rules_on_known_scores():
    scores = torch.tensor([[1.0, 3.0], [2.0, 2.0], [0.0, 4.0]])  # rows: responses; columns: members
    assert aggregate(scores, "mean").tolist() == [2.0, 2.0, 2.0]
    assert aggregate(scores, "min").tolist() == [1.0, 2.0, 0.0]
    assert aggregate(scores, "uncertainty", 0.5).tolist() == [1.5, 2.0, 0.0]  # variances over members: 1, 0, 4
    assert aggregate(scores, "uncertainty", 0.0).tolist() == [2.0, 2.0, 2.0]
    assert aggregate(scores, "single").tolist() == [1.0, 2.0, 0.0]
    one = torch.tensor([[0.75], [-1.25]])
    for rule in RULES:  # one member: every rule is that member
        assert aggregate(one, rule, 3.0).tolist() == [0.75, -1.25], rule


def test_members_are_mapped_onto_member_0s_scale():
    scales, shifts = onto_first([[0.0, 2.0, 4.0], [10.0, 11.0, 12.0], [5.0, 5.0, 5.0]])
    assert (scales[0], shifts[0]) == (1.0, 0.0)
    assert [v * scales[1] + shifts[1] for v in (10.0, 11.0, 12.0)] == pytest.approx([0.0, 2.0, 4.0])
    assert [v * scales[2] + shifts[2] for v in (5.0, 5.0)] == [2.0, 2.0]  # a constant member: member 0's mean


def negated(reward_dir, out):
    """A copy of the reward model whose score is minus the original's."""
    tokenizer = load_tokenizer(str(reward_dir))
    model = load_reward_model(str(reward_dir), tokenizer.pad_token_id, Loading())
    with torch.no_grad():
        model.score.weight.neg_()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def ensemble_of(members, out, rule, penalty=None):
    settings = Ensemble(members=len(members), aggregate=rule, **({"penalty": penalty} if penalty is not None else {}))
    tokenizer = load_tokenizer(str(members[0]))
    store_ensemble(out, members, settings, [1.0] * len(members), [0.0] * len(members), tokenizer)
    return out


def scores_of(model, tokenizer) -> list[float]:
    return reward_scores(model, tokenizer, PROMPTS[:1] * len(RESPONSES), RESPONSES, batch_size=4)


@pytest.fixture(scope="module")
def plus_and_minus(reward_dir, tmp_path_factory):
    """An ensemble of the reward model and its negation, read by their minimum: -|score|, nothing like either."""
    minus = negated(reward_dir, tmp_path_factory.mktemp("minus"))
    return ensemble_of([reward_dir, minus], tmp_path_factory.mktemp("plus_and_minus"), "min")


@pytest.mark.parametrize("rule", RULES)
def test_an_ensemble_of_one_is_the_single_reward_model(rule, reward_dir, tmp_path):
    tokenizer = load_tokenizer(str(reward_dir))
    single = load_reward(reward_dir, tokenizer.pad_token_id, Loading())
    ensemble = load_reward(ensemble_of([reward_dir], tmp_path, rule), tokenizer.pad_token_id, Loading())
    assert isinstance(ensemble, RewardEnsemble) and not isinstance(single, RewardEnsemble)
    assert scores_of(ensemble, tokenizer) == scores_of(single, tokenizer)


@pytest.mark.ppo
def test_ppo_reads_an_ensemble_as_trl_reads_a_reward_model(reward_dir, plus_and_minus, tmp_path):
    """TRL's PPO scores through get_reward (backbone, then score at every position): an ensemble of one gives the
    single model's numbers there too, and an ensemble gives its aggregate, the same as its forward."""
    from trl.experimental.utils import get_reward

    tokenizer = load_tokenizer(str(reward_dir))
    rows = [
        tokenizer(PROMPTS[0] + r, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for r in RESPONSES
    ]
    width = max(map(len, rows)) + 1
    batch = torch.tensor([row + [tokenizer.pad_token_id] * (width - len(row)) for row in rows])
    context = 2  # the first two tokens stand for the prompt, as PPO's query
    single = load_reward(reward_dir, tokenizer.pad_token_id, Loading())
    one = load_reward(ensemble_of([reward_dir], tmp_path, "min"), tokenizer.pad_token_id, Loading())
    assert torch.equal(get_reward(one, batch, tokenizer.pad_token_id, context)[1],
                       get_reward(single, batch, tokenizer.pad_token_id, context)[1])  # fmt: skip
    both = load_reward(plus_and_minus, tokenizer.pad_token_id, Loading())
    from_ppo = get_reward(both, batch, tokenizer.pad_token_id, context)[1]
    alone = get_reward(single, batch, tokenizer.pad_token_id, context)[1]
    assert torch.allclose(from_ppo, -alone.abs(), atol=1e-5)


def test_the_learned_reward_of_the_online_methods_is_the_aggregate(reward_dir, plus_and_minus):
    tokenizer = load_tokenizer(str(reward_dir))
    single = scores_of(load_reward(reward_dir, tokenizer.pad_token_id, Loading()), tokenizer)
    reward = LearnedReward(load_reward(plus_and_minus, tokenizer.pad_token_id, Loading()), tokenizer, None)
    ids = [[tokenizer.eos_token_id]] * len(RESPONSES)
    assert reward(PROMPTS[:1] * len(RESPONSES), RESPONSES, ids) == pytest.approx([-abs(s) for s in single], abs=1e-5)
    assert any(abs(s) > 1e-3 for s in single), "the aggregate differs from the single model's scores"


@pytest.fixture
def counted(monkeypatch):
    """How often an ensemble was asked for a score: by its forward (every consumer but PPO) or, position by
    position, by TRL's get_reward (PPO)."""
    calls = {"forward": 0, "positions": 0}
    forward, positions = RewardEnsemble.forward, Aggregation.forward

    def counted_forward(self, *args, **kwargs):
        calls["forward"] += 1
        return forward(self, *args, **kwargs)

    def counted_positions(self, *args, **kwargs):
        calls["positions"] += 1
        return positions(self, *args, **kwargs)

    monkeypatch.setattr(RewardEnsemble, "forward", counted_forward)
    monkeypatch.setattr(Aggregation, "forward", counted_positions)
    return calls


@pytest.mark.parametrize("name", ["rloo", "grpo", "online_dpo", "rsft"])
def test_every_online_method_trains_on_the_aggregate(
    name, counted, tiny_model_dir, preferences_dir, prompts_dir, plus_and_minus, tmp_path
):
    assert name in SECTIONS
    inputs = {"policy": tiny_model_dir, "preferences": preferences_dir, "prompts": prompts_dir}
    train(name, tmp_path, inputs | {"reward_model": plus_and_minus})
    assert counted["forward"] > 0, f"{name} never scored with the ensemble"


@pytest.mark.ppo
def test_ppo_trains_on_the_aggregate_and_its_value_model_starts_from_member_0(
    counted, tiny_model_dir, prompts_dir, plus_and_minus, tmp_path
):
    from tests.test_lora_and_4bit import train_ppo

    train_ppo(tiny_model_dir, plus_and_minus, prompts_dir, tmp_path, Loading(), Tuning())
    assert counted["positions"] > 0, "PPO never scored with the ensemble"
    assert member_paths(plus_and_minus)[0].is_dir()


def test_training_curves_read_the_aggregate(reward_dir, plus_and_minus, prompts_dir, tiny_model_dir):
    tokenizer = load_tokenizer(str(reward_dir))
    curve = Curve(1, prompts_dir, 2, 4, 1.0, 2, None, plus_and_minus, Loading())
    tracker = HeldoutCurve.start(curve, tokenizer, "cpu", None, None, 0)
    assert isinstance(tracker.scorer, RewardEnsemble)


@pytest.mark.ppo
def test_a_run_with_an_ensemble_evaluates_and_reports_the_aggregate(tmp_path):
    """Two members read by their minimum: evaluation and best-of-N score with it (recomputed here from the
    members), the report names it with each member's accuracy, and the costs count each member."""
    run_dir = tmp_path / "run"
    metrics = rlhf_run(
        "recipes/smoke.yaml",
        run_dir,
        "reward_model.ensemble={members: 2, aggregate: min, bootstrap: true}",
        "reward_model.epochs=1",
        "samples.responses_per_prompt=2",
        "ppo.total_episodes=128",
        "ppo.eval_every_updates=1",
        "dpo.epochs=1",
        "evaluation.responses_per_prompt=1",
        "evaluation.best_of_n=[1, 2]",
        "evaluation.curve_prompts=8",
    )
    assert metrics["reward_model"]["members"] == 2
    ensemble = metrics["reward_model"]["ensemble"]
    assert ensemble["aggregate"] == "min" and len(ensemble["member_heldout_accuracy"]) == 2
    described = json.loads((run_dir / "reward_model" / "ensemble.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "evaluation" / "generations.jsonl").read_text().splitlines()]
    tokenizer = load_tokenizer(str(run_dir / "reward_model"))
    members = []
    for index, path in enumerate(member_paths(run_dir / "reward_model")):
        model = load_reward_model(str(path), tokenizer.pad_token_id, Loading())
        raw = reward_scores(model, tokenizer, [r["prompt"] for r in rows], [r["response"] for r in rows], 64)
        members.append([s * described["scales"][index] + described["shifts"][index] for s in raw])
    expected = aggregate(torch.tensor(members).T, "min").tolist()
    assert [r["reward_model"] for r in rows] == pytest.approx(expected, abs=1e-4)
    best = [json.loads(line) for line in (run_dir / "evaluation" / "best_of_n.jsonl").read_text().splitlines()]
    assert all(row["reward_model"] == pytest.approx(min(row["member_scores"]), abs=1e-5) for row in best)
    report = (run_dir / "report.md").read_text()
    assert "An ensemble of 2 reward models read as their **min**" in report
    ppo_calls = json.loads((run_dir / "ppo" / "stage.json").read_text())["summary"]["reward_model_calls"]
    assert metrics["costs"]["ppo"]["reward_model_calls"] == 2 * ppo_calls
    shutil.rmtree(run_dir)


def test_bad_ensemble_settings_are_refused_with_the_fix():
    from pydantic import ValidationError

    cases = [
        ({"members": 0}, "an ensemble needs at least 1"),
        ({"members": 3, "aggregate": "median"}, "'median' is not an aggregate"),
        ({"members": 3, "aggregate": "minimum"}, "did you mean min"),
        ({"members": 3, "aggregate": "uncertainty", "penalty": -1.0}, "a negative penalty"),
        ({"members": 3, "aggregate": "min", "penalty": 2.0}, "read only by aggregate: uncertainty"),
    ]
    for settings, message in cases:
        with pytest.raises(ValidationError, match=message):
            Ensemble(**settings)


@pytest.mark.ppo
def test_each_member_is_a_stage_of_its_own_and_the_aggregate_trains_nothing_again(in_repo, tmp_path):
    """Member 0 is the single reward model (one stored stage for both); changing the aggregate or its penalty
    rebuilds the ensemble stage and what reads the learned reward, no member; bootstrap, members 1 onward."""
    import yaml

    from tests.test_fingerprints import stage_fingerprints

    base = yaml.safe_load((in_repo / "recipes" / "smoke.yaml").read_text())
    run_dir = tmp_path / "run"

    def with_ensemble(**settings) -> dict[str, str]:
        data = copy.deepcopy(base)
        data["reward_model"]["ensemble"] = settings
        return stage_fingerprints(data, run_dir)

    single = stage_fingerprints(base, run_dir)
    three = with_ensemble(members=3, aggregate="mean")
    members = [f"reward_model_member_{i}" for i in range(3)]
    assert list(three) == [*list(single)[:5], *members, "reward_model", "ppo", "dpo", "evaluation"]
    assert three["reward_model_member_0"] == single["reward_model"]
    assert len({three[m] for m in members}) == 3, "each member trains with its own seed"
    readers = {"reward_model", "ppo", "dpo", "evaluation"}  # DPO too: its held-out curve is scored with it
    for change in ({"aggregate": "min"}, {"aggregate": "uncertainty"}, {"aggregate": "uncertainty", "penalty": 2.0}):
        changed = with_ensemble(members=3, **change)
        assert {s for s in three if three[s] != changed[s]} == readers, change
    resampled = with_ensemble(members=3, aggregate="mean", bootstrap=True)
    assert {s for s in three if three[s] != resampled[s]} == readers | set(members[1:])
    four = with_ensemble(members=4, aggregate="mean")
    assert all(four[s] == three[s] for s in members) and four["reward_model"] != three["reward_model"]


def trained_weights(out_dir) -> dict:
    from safetensors.torch import load_file

    return load_file(out_dir / "model.safetensors")


@pytest.mark.parametrize("name", ["rloo", pytest.param("ppo", marks=pytest.mark.ppo)])
def test_training_on_an_ensemble_read_as_member_0_is_training_on_the_single_reward_model(
    name, reward_dir, plus_and_minus, tiny_model_dir, preferences_dir, prompts_dir, tmp_path
):
    """aggregate: single over four members trains the very weights the single reward model does: loading the
    other members draws nothing from the seed's random stream."""
    minus = member_paths(plus_and_minus)[1]
    single_of_four = ensemble_of([reward_dir, minus, minus, reward_dir], tmp_path / "ensemble", "single")
    weights = []
    for label, reward in (("alone", reward_dir), ("in_ensemble", single_of_four)):
        out = tmp_path / label
        if name == "ppo":
            from tests.test_lora_and_4bit import train_ppo

            out.mkdir()
            train_ppo(tiny_model_dir, reward, prompts_dir, out, Loading(), Tuning())
        else:
            inputs = {"policy": tiny_model_dir, "preferences": preferences_dir, "prompts": prompts_dir}
            train(name, out, inputs | {"reward_model": reward})
        weights.append(trained_weights(out))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


@pytest.mark.slow  # about 20 s beside the other own-pairs runs; the gold-judged run above is in the default suite
@pytest.mark.ppo
def test_a_run_without_a_gold_judge_reports_its_ensemble_against_the_labels(tmp_path):
    metrics = rlhf_run(
        "recipes/smoke_own_pairs.yaml",
        tmp_path / "run",
        "reward_model.ensemble={members: 2, aggregate: min}",
        "reward_model.epochs=1",
        "ppo.total_episodes=128",
        "dpo.epochs=1",
        "evaluation.responses_per_prompt=1",
    )
    assert metrics["gold_labeler"] is None and metrics["reward_model"]["members"] == 2
    assert len(metrics["reward_model"]["ensemble"]["member_heldout_accuracy_vs_labels"]) == 2
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Each member's held-out accuracy against the dataset's labels" in report


def test_a_variant_cannot_take_a_member_s_name():
    """reward_model_member_<i> is an ensemble member's stage and folder: a variant named so would share them."""
    from rlhf_recipes.config.schema import name_taken_by

    assert name_taken_by("reward_model_member_1") == "an ensemble's reward models"
    assert name_taken_by("reward_model_memberless") is None

"""Fingerprints come from what each stage is handed: a change to any recipe key rebuilds exactly the
stages that read it and those downstream of them, and nothing else.

The tables below are written by hand from what each stage does; the test derives nothing from the
pipeline but the fingerprints it checks.
"""

import copy
import shutil
import sys
from pathlib import Path

import pytest

from rlhf_recipes.config.loader import load_recipe
from rlhf_recipes.config.schema import Recipe
from rlhf_recipes.run.pipeline import plan
from rlhf_recipes.runtime.stage import fingerprints
from rlhf_recipes.stages.methods import METHODS as REGISTERED

from .helpers import REPO, tiny_classifier

# Every registered method, each set in the full recipe (a method added to the registry is tested too).
OFFLINE = {m.stage for m in REGISTERED if "preferences" in m.READS} | {"dpo_robust"}  # learn from the pairs
ONLINE = {m.stage for m in REGISTERED if "reward_model" in m.READS}  # read the reward model
METHODS = OFFLINE | ONLINE
IMPLICIT = {m.stage for m in REGISTERED if m.IMPLICIT_REWARD} | {"dpo_robust"}  # evaluation reads their beta
MODEL_STAGES = {"sft", "samples", "reward_model", "evaluation"} | METHODS
TRAINING_STAGES = {"sft", "reward_model"} | METHODS
CURVES = METHODS  # every method draws a held-out curve in the full recipe

# Which stages read a key (the longest matching prefix wins), before following the stages downstream.
READERS = {
    "seed": {"prompts", "model", *MODEL_STAGES, "preferences"},
    "training_seed": METHODS | {"evaluation"},  # the data stages keep `seed`
    "prompts": {"prompts"},
    "model.tiny": {"model"},
    "model.dtype": MODEL_STAGES,
    "model.trust_remote_code": MODEL_STAGES | {"preferences"},
    "model.load_in_4bit": {"sft", "samples", "evaluation"} | METHODS,  # not the reward model: its own key
    "model.lora": {"sft"} | METHODS,
    "model.save_merged": METHODS,
    "sft": {"sft"},
    "samples": {"samples"},
    "labeler": {"preferences"},
    "gold_labeler": {"preferences", "evaluation"} | CURVES,
    "preferences": {"preferences"},
    "reward_model": {"reward_model"},
    "reward_model.load_in_4bit": {"reward_model", "evaluation"} | CURVES | ONLINE,
    "reward_model.lora": {"reward_model", "ppo"},  # PPO's value model gets the same LoRA
    **{method: {method} for method in METHODS - {"dpo_robust"}},
    "variants.dpo_robust": {"dpo_robust"},
    **{f"{method}.beta": {method, "evaluation"} for method in IMPLICIT - {"dpo_robust"}},
    "variants.dpo_robust.beta": {"dpo_robust", "evaluation"},
    "evaluation": {"evaluation"},
    "evaluation.max_new_tokens": {"evaluation"} | CURVES,
    "evaluation.temperature": {"evaluation"} | CURVES,
    "evaluation.batch_size": {"evaluation"} | CURVES,
    "evaluation.curve_prompts": {"evaluation"} | CURVES,
    "evaluation.examples_in_report": set(),  # the report only, which is rebuilt every run
    "compute": TRAINING_STAGES,
    "compute.device": TRAINING_STAGES,  # sampling and evaluation see the resolved device: cpu here, either way
    "compute.checkpoint_every_steps": set(),  # where training may resume from, not what it computes
    "compute.report_to": set(),  # where metrics are sent, not what is computed
}

# The stages that read each stage's output, in the full recipe (curves read prompts and the reward model).
DEPENDENTS = {
    "prompts": {"samples", "evaluation"} | METHODS,
    "model": {"sft"},
    "sft": {"samples", "preferences", "reward_model", "evaluation"} | METHODS,
    "samples": {"preferences"},
    "preferences": {"reward_model", "evaluation"} | OFFLINE,
    "reward_model": {"evaluation"} | METHODS,
    **{method: {"evaluation"} for method in METHODS},
    "evaluation": set(),
}

LABELERS = """
def polite(text):
    return float("please" in text)


def rude(text):
    return -float("no" in text)
"""


@pytest.fixture
def full_recipe(tmp_path, in_repo, monkeypatch) -> dict:
    """The smoke recipe with every optional key set: LoRA, 4-bit-ready bfloat16, a gold labeler of every
    kind, label noise, curves, checkpoints, an accelerate config, prompts with groups."""
    (tmp_path / "fingerprint_labelers.py").write_text(LABELERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fingerprint_labelers", raising=False)  # another test's copy
    gold = {
        "kind": "composite",
        "parts": [
            {"weight": 1.0, "labeler": {"kind": "sentiment"}},
            {"weight": 0.5, "labeler": {"kind": "length", "target_words": 8}},
            {"weight": 0.5, "labeler": {"kind": "keywords", "keywords": ["great", "good"]}},
            {"weight": 0.2, "labeler": {"kind": "regex", "pattern": "!", "ignore_case": True}},
            {"weight": 0.1, "labeler": {"kind": "python", "function": "fingerprint_labelers:polite"}},
        ],
    }
    overrides = [
        "model.lora={rank: 4, alpha: 8.0, dropout: 0.05, target_modules: all-linear}",
        "model.save_merged=true",
        "reward_model.lora={rank: 4, alpha: 8.0, dropout: 0.05, target_modules: all-linear}",
        "compute.bf16=true",
        f"prompts.path={REPO}/data/sentiment/prompts.jsonl",
        "prompts.group_field=topic",
        "prompts.max_prompts=100",
        "preferences.bradley_terry_temperature=0.5",
        "preferences.label_flip_prob=0.1",
        "preferences.tie_margin=0.01",
        "preferences.pairing=best_vs_worst",  # so that pairs_per_prompt can change too
        "ppo.missing_eos_penalty=1.0",
        "ppo.whiten_rewards=true",
        "compute.checkpoint_every_steps=10",
        f"compute.accelerate_config={REPO}/recipes/accelerate/ddp_4gpu.yaml",
        "samples.top_k=50",
        "samples.top_p=0.9",
        "ppo.eval_every_updates=2",
        "grpo={eval_every_steps: 2, loss_type: grpo}",  # so that importance_sampling_level can change too
        "rsft={eval_every_steps: 2, rounds: 2}",
        *(f"{m.stage}={{{m.CURVE_KEY}: 2}}" for m in REGISTERED if m.stage not in ("ppo", "dpo", "grpo", "rsft")),
        "variants={dpo_robust: {method: dpo, loss_type: robust, label_smoothing: 0.05, eval_every_steps: 2}}",
        "dpo.loss_type=[robust, sft]",
        "dpo.loss_weights=[1.0, 0.5]",
        "dpo.label_smoothing=0.1",
        f"gold_labeler={gold}",
    ]
    recipe = load_recipe(REPO / "recipes/smoke.yaml", overrides)
    return recipe.model_dump(mode="json") | {"study": None}


def stage_fingerprints(data: dict, run_dir: Path) -> dict[str, str]:
    return fingerprints(plan(Recipe.model_validate(data), run_dir), run_dir)


def leaves(node, path=()):
    """Every leaf key of the recipe: a scalar, or a list of scalars; lists of sections are walked by index."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list) and node and isinstance(node[0], dict):
        for index, value in enumerate(node):
            yield from leaves(value, (*path, index))
    else:
        yield path, node


# one model source and one prompt source at a time; your own pairs change the plan (tests/test_own_pairs.py)
OTHER_SOURCES = {"model.name_or_path", "model.gguf", "model.builtin", "prompts.hub_dataset", "preferences.dataset"}
OTHER_CHOICES = {
    "importance_sampling_level": "sequence",
    "dtype": "bfloat16",
    "device": "auto",
    "pairing": "random",
    "kl_estimator": "k3",
    "scale_rewards": "batch",
    "target_modules": ["q_proj", "v_proj"],
    "pattern": "[?]",
    "function": "fingerprint_labelers:rude",
    "report_to": ["tensorboard"],
}


def changed_values(path: tuple, value, tmp_path: Path) -> list:
    """Values to try in place of `value`, most likely valid first."""
    if path[-1] in OTHER_CHOICES:
        return [OTHER_CHOICES[path[-1]]]
    if path[-1] == "loss_type":  # each method's own losses; DPO's may be a list
        dpo_list = list(reversed(value)) if isinstance(value, list) else ["robust"]
        return ["hinge", "grpo", "dapo", "ipo", "sigmoid", dpo_list]
    if path[-1] == "loss_weights":
        return [[weight * 2 for weight in value]] if value else [[2.0]]
    if value is None:  # an optional key left unset: set it
        return [2, 0.5, True, [2.0]]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value * 2, value - 1]
    if isinstance(value, float):
        return [value * 2, value / 2, round(value + 0.1, 6)]
    if isinstance(value, str) and Path(value).is_file():  # the same file with one more line
        edited = tmp_path / "edited" / "_".join(map(str, path)) / Path(value).name
        edited.parent.mkdir(parents=True)
        shutil.copy(value, edited)
        with open(edited, "a") as handle:
            handle.write("\n")
        return [str(edited)]
    if isinstance(value, str):
        return [value + "_other"]
    if isinstance(value, list):
        return [value[:-1], [*value, value[-1]]] if value and not isinstance(value[-1], str) else [[*value, "other"]]
    raise AssertionError(f"no change known for {path} = {value!r}")


def set_path(data: dict, path: tuple, value) -> dict:
    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def expected_changes(dotted: str) -> set[str]:
    prefix = max((p for p in READERS if dotted == p or dotted.startswith(p + ".")), key=len)
    changed, frontier = set(), set(READERS[prefix])
    while frontier:
        stage = frontier.pop()
        changed.add(stage)
        frontier |= DEPENDENTS[stage] - changed
    return changed


@pytest.mark.ppo
def test_every_key_rebuilds_exactly_its_readers_and_what_follows(full_recipe, tmp_path):
    run_dir = tmp_path / "run"
    before = stage_fingerprints(full_recipe, run_dir)
    assert set(before) == set(DEPENDENTS)
    wrong, walked = [], []
    for path, value in leaves(full_recipe):
        dotted = ".".join(map(str, path))
        if (
            path[-1] in ("kind", "method", "name") or path[0] == "study"
        ):  # a labeler's kind is tested below; name and study make no stage
            continue
        if (
            dotted in OTHER_SOURCES
        ):  # one model source and one prompt source at a time; a local model directory is below
            continue
        if dotted == "reward_model.ensemble":  # adds stages: tests/test_ensemble.py walks its keys
            continue
        for candidate in [c for c in changed_values(path, value, tmp_path) if c != value]:
            try:
                after = stage_fingerprints(set_path(full_recipe, path, candidate), run_dir)
            except ValueError:  # pydantic's ValidationError: not a valid change of this key, try the next
                continue
            changed = {stage for stage in before if before[stage] != after[stage]}
            expected = expected_changes(".".join(p for p in map(str, path) if not p.isdigit()))
            if changed != expected:
                wrong.append(f"{dotted}: changed {sorted(changed)}, expected {sorted(expected)}")
            walked.append(dotted)
            break
        else:
            wrong.append(f"{dotted}: no valid change found for {value!r}")
    assert not wrong, "\n".join(wrong)
    assert len(walked) > 90, walked  # every section's keys, not a few


@pytest.mark.ppo
def test_training_seed_unset_hands_every_stage_the_seed_itself(full_recipe, tmp_path):
    """training_seed: null trains and evaluates with `seed`, the int every stage was handed before the key
    existed, so earlier run directories are reused. Set, it goes to the methods and evaluation only; a variant
    (dpo_robust) trains with a seed of its own."""
    unset = stage_fingerprints(full_recipe | {"seed": 3}, tmp_path)
    assert stage_fingerprints(full_recipe | {"seed": 3, "training_seed": 3}, tmp_path) == unset

    def seeds(data: dict) -> dict:
        return {step.name: step.arguments.get("seed") for step in plan(Recipe.model_validate(data), tmp_path)}

    plain, trained = seeds(full_recipe | {"seed": 3}), seeds(full_recipe | {"seed": 3, "training_seed": 5})
    assert plain["samples"] == plain["dpo"] == plain["ppo"] == plain["evaluation"] == 3
    assert trained["samples"] == trained["reward_model"] == 3 and trained["dpo"] == trained["evaluation"] == 5
    assert plain["dpo_robust"] not in (None, 3) and trained["dpo_robust"] not in (None, 5, plain["dpo_robust"])


@pytest.mark.ppo
def test_a_labeler_of_another_kind_rebuilds_the_preferences_and_what_follows(full_recipe, tmp_path):
    before = stage_fingerprints(full_recipe, tmp_path)
    after = stage_fingerprints(full_recipe | {"labeler": {"kind": "length", "target_words": 5}}, tmp_path)
    assert {stage for stage in before if before[stage] != after[stage]} == expected_changes("labeler")


@pytest.mark.ppo
def test_a_model_gold_judge_rebuilds_what_it_judged_when_its_label_or_weights_change(full_recipe, tmp_path):
    """A classifier judge: another label, or new weights saved in the same directory, rebuild the
    preferences (which record gold scores), evaluation and the curves, and nothing else."""
    import torch
    from transformers import AutoModelForSequenceClassification

    directory = tiny_classifier(tmp_path)
    judged = full_recipe | {"gold_labeler": {"kind": "classifier", "model": str(directory), "label": "POSITIVE"}}
    before = stage_fingerprints(judged, tmp_path / "run")
    relabeled = judged | {"gold_labeler": judged["gold_labeler"] | {"label": "NEGATIVE"}}
    assert {s for s, f in stage_fingerprints(relabeled, tmp_path / "run").items() if before[s] != f} == (
        expected_changes("gold_labeler")
    )
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(directory)
    torch.nn.init.normal_(model.score.weight)
    model.save_pretrained(directory)
    after = stage_fingerprints(judged, tmp_path / "run")
    assert {stage for stage in before if before[stage] != after[stage]} == expected_changes("gold_labeler")


@pytest.mark.ppo
def test_editing_a_python_labeler_rebuilds_the_preferences_and_what_follows(full_recipe, tmp_path):
    before = stage_fingerprints(full_recipe, tmp_path / "run")
    (tmp_path / "fingerprint_labelers.py").write_text(LABELERS.replace('"please"', '"thanks"'))
    after = stage_fingerprints(full_recipe, tmp_path / "run")
    assert {stage for stage in before if before[stage] != after[stage]} == expected_changes("gold_labeler")


@pytest.mark.ppo
def test_a_stage_version_bump_rebuilds_it_and_what_follows(full_recipe, tmp_path, monkeypatch):
    from rlhf_recipes.stages.reward_model import reward_model

    before = stage_fingerprints(full_recipe, tmp_path)
    monkeypatch.setattr(reward_model, "version", reward_model.version + 1)
    after = stage_fingerprints(full_recipe, tmp_path)
    changed = {stage for stage in before if before[stage] != after[stage]}
    assert changed == expected_changes("reward_model") == {"reward_model", "evaluation"} | METHODS


@pytest.mark.ppo
def test_without_curves_the_offline_methods_do_not_read_the_reward_model(full_recipe, tmp_path):
    data = copy.deepcopy(full_recipe)
    for name in OFFLINE - {"dpo_robust"}:
        data[name]["eval_every_steps"] = None
    data["variants"]["dpo_robust"]["eval_every_steps"] = None
    before = stage_fingerprints(data, tmp_path)
    after = stage_fingerprints(set_path(data, ("reward_model", "epochs"), 9.0), tmp_path)
    assert {stage for stage in before if before[stage] != after[stage]} == {"reward_model", "evaluation"} | ONLINE


@pytest.mark.ppo
def test_a_local_model_directory_is_fingerprinted_by_its_files(full_recipe, tiny_model_dir, tmp_path):
    model_dir = tmp_path / "local_model"
    shutil.copytree(tiny_model_dir, model_dir)
    data = full_recipe | {"model": full_recipe["model"] | {"tiny": None, "name_or_path": str(model_dir)}}
    before = stage_fingerprints(data, tmp_path / "run")
    assert "model" not in before, "a local directory is used where it is, with no model stage"
    (model_dir / "generation_config.json").write_text('{"temperature": 0.5}')
    after = stage_fingerprints(data, tmp_path / "run")
    assert {stage for stage in before if before[stage] != after[stage]} == set(before) - {"prompts"}


@pytest.mark.ppo
def test_fingerprints_do_not_depend_on_where_the_run_directory_is(full_recipe, tmp_path):
    """Sweeps link a stage from another variant's directory when its fingerprint matches."""
    assert stage_fingerprints(full_recipe, tmp_path / "a") == stage_fingerprints(
        full_recipe, tmp_path / "elsewhere" / "b"
    )


def test_a_setting_added_later_leaves_earlier_runs_reused_at_its_default(in_repo):
    """A key marked added_later enters a fingerprint only when set away from its default, so a run made
    before the key existed keeps its fingerprints."""
    from rlhf_recipes.config.schema import Preferences, Prompts
    from rlhf_recipes.runtime.stage import _value

    plain = Prompts(path="data/smoke/prompts.txt")
    assert "prefix_words" not in _value(plain, {}) and "dataset" not in _value(Preferences(), {})
    assert _value(Prompts(path="data/smoke/prompts.txt", prefix_words=3), {})["prefix_words"] == 3

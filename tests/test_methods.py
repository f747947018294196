"""Every training method on the tiny model: full fine-tuning moves every weight, LoRA (and LoRA on 4-bit
NF4) moves every adapter, an interrupted stage resumes where it stopped and ends where an uninterrupted
one ends, and bad settings are refused with the fix.

LoRA's B matrices start at exactly zero, so a B that is non-zero after training proves its layer was
trained; a full fine-tuning run must change every saved tensor.
"""

import importlib
import inspect
import json

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file
from transformers import TrainerCallback

from rlhf_recipes.config.base import Lora
from rlhf_recipes.config.schema import Compute
from rlhf_recipes.errors import RecipeError
from rlhf_recipes.models.loading import Loading, Tuning
from rlhf_recipes.stages.dpo import Dpo
from rlhf_recipes.stages.grpo import Grpo
from rlhf_recipes.stages.kto import Kto
from rlhf_recipes.stages.online_dpo import OnlineDpo
from rlhf_recipes.stages.orpo import Orpo
from rlhf_recipes.stages.rloo import Rloo
from rlhf_recipes.stages.rsft import Rsft
from rlhf_recipes.stages.simpo import Simpo

LORA = Lora(rank=4, alpha=8, dropout=0.0)
SECTIONS = {  # a few optimizer steps each on the shared fixtures: 16 pairs, 8 train prompts
    "dpo": Dpo(epochs=1, learning_rate=1e-2, batch_size=4, max_length_tokens=32, loss_type=["sigmoid", "sft"]),
    "kto": Kto(epochs=1, learning_rate=1e-2, batch_size=4, max_length_tokens=32),
    "simpo": Simpo(epochs=1, learning_rate=1e-2, batch_size=4, max_length_tokens=32),
    "orpo": Orpo(epochs=1, learning_rate=1e-2, batch_size=4, max_length_tokens=32),
    "rloo": Rloo(epochs=1, learning_rate=1e-2, prompts_per_step=2, generations_per_prompt=2, max_new_tokens=6),
    "grpo": Grpo(epochs=1, learning_rate=1e-2, prompts_per_step=2, generations_per_prompt=2, max_new_tokens=6),
    "online_dpo": OnlineDpo(epochs=1, learning_rate=1e-2, prompts_per_step=2, max_new_tokens=6),
    "rsft": Rsft(samples_per_prompt=2, rounds=2, epochs=1, learning_rate=1e-2, batch_size=4, max_new_tokens=6),
}


CPU = Compute(device="cpu")
FLOAT32 = Loading()
FULL = Tuning()


def train(name, out_dir, inputs, loading=FLOAT32, tuning=FULL, compute=CPU, section=None):
    """Run method `name`'s stage as the pipeline would, handing it what its parameters name."""
    function = getattr(importlib.import_module(f"rlhf_recipes.stages.{name}"), name)
    available = {"first_round": None} | inputs | {"settings": section or SECTIONS[name], "loading": loading,
                 "tuning": tuning, "compute": compute, "reward_loading": FLOAT32, "curve": None, "seed": 0}  # fmt: skip
    arguments = {key: available[key] for key in inspect.signature(function).parameters if key != "out_dir"}
    out_dir.mkdir(parents=True, exist_ok=True)
    return function(**arguments, out_dir=out_dir)


@pytest.fixture
def inputs(tiny_model_dir, preferences_dir, prompts_dir, reward_dir):
    return {
        "policy": tiny_model_dir,
        "preferences": preferences_dir,
        "prompts": prompts_dir,
        "reward_model": reward_dir,
    }


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_full_fine_tuning_changes_every_weight(name, inputs, tmp_path):
    summary = train(name, tmp_path, inputs)
    before, after = load_file(inputs["policy"] / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    assert not [key for key in before if torch.equal(before[key], after[key])], name
    assert summary["steps"] >= 2


@pytest.mark.parametrize("four_bit", [False, True], ids=["lora", "qlora"])
@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_lora_trains_every_adapter(name, four_bit, inputs, tmp_path):
    loading = Loading(dtype="bfloat16", load_in_4bit=True) if four_bit else Loading()
    train(name, tmp_path, inputs, loading=loading, tuning=Tuning(LORA))
    adapters = load_file(tmp_path / "adapter_model.safetensors")
    b_matrices = {key: weight for key, weight in adapters.items() if "lora_B" in key}
    assert b_matrices and not [key for key, weight in b_matrices.items() if (weight == 0).all()], name
    assert not (tmp_path / "model.safetensors").exists(), "a LoRA policy is saved as an adapter"


class StopAfterSaving(TrainerCallback):
    """Stands for a kill right after the checkpoint of `step` was written."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_an_interrupted_method_resumes_where_it_stopped(name, inputs, tmp_path, monkeypatch):
    """Killed after its second checkpoint (rejection sampling: in its second round), the stage run again
    on the same directory resumes from that checkpoint and ends with the weights of an uninterrupted run."""
    compute = Compute(device="cpu", checkpoint_every_steps=1)
    whole = train(name, tmp_path / "whole", inputs, compute=compute)
    module = importlib.import_module(f"rlhf_recipes.stages.{name}")
    real_fit, calls = module.fit, []

    def fit_then_stop(trainer, **kwargs):
        calls.append(trainer)
        if len(calls) == getattr(SECTIONS[name], "rounds", 1):  # the last round's training
            trainer.add_callback(StopAfterSaving(2))
        return real_fit(trainer, **kwargs)

    monkeypatch.setattr(module, "fit", fit_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(name, tmp_path / "part", inputs, compute=compute)
    monkeypatch.undo()
    assert list((tmp_path / "part").rglob("checkpoint-2/trainer_state.json")), "the interrupted stage kept a checkpoint"
    resumed = train(name, tmp_path / "part", inputs, compute=compute)
    assert resumed["steps"] == whole["steps"]
    expected, weights = (load_file(tmp_path / run / "model.safetensors") for run in ("whole", "part"))
    assert all(torch.equal(expected[key], weights[key]) for key in expected), "resumed training ends where whole ends"
    log = json.loads((tmp_path / "part" / "log_history.json").read_text())
    steps = [entry["step"] for entry in log if "loss" in entry]
    assert steps == list(range(1, whole["steps"] + 1)), "the log runs from the first step to the last, once each"


def test_bad_method_settings_are_refused_with_the_fix():
    cases = [
        (lambda: Grpo(generations_per_prompt=1), "greater than or equal to 2"),
        (lambda: Kto(batch_size=1), "greater than or equal to 2"),
        (lambda: Dpo(label_smoothing=0.1), "has no effect with loss_type sigmoid"),
        (lambda: Dpo(loss_type=["sigmoid", "sft"], loss_weights=[1.0]), "loss_weights has 1 weight(s) for 2 loss(es)"),
        (lambda: Dpo(loss_type="exo_pair"), "exo_pair needs label_smoothing > 0"),
        (lambda: Rsft(samples_per_prompt=1), "greater than or equal to 2"),
        (lambda: OnlineDpo(loss_type="hinge"), "Input should be 'sigmoid' or 'ipo'"),
    ]
    for make, message in cases:
        with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
            make()


def test_a_method_missing_from_the_installed_trl_names_the_versions_that_have_it(monkeypatch):
    from rlhf_recipes.run import preflight

    assert preflight.module_provides("trl.experimental.cpo", "CPOTrainer"), "read from the installed TRL's source"
    assert not preflight.module_provides("trl", "PPOTrainer"), "TRL's top level has no PPO"
    provides = preflight.module_provides
    monkeypatch.setattr(preflight, "module_provides", lambda m, n: n != "CPOTrainer" and provides(m, n))
    Simpo()  # the recipe's shape is fine: the installed TRL is the preflight step's to check
    with pytest.raises(ValueError, match=r"needs trl.experimental.cpo.CPOTrainer, which the installed TRL .* "
                       r"Fix: pip install 'trl>=1.10,<1.17'"):  # fmt: skip
        preflight.trainer_installed(Simpo())


@pytest.mark.ppo
def test_variants_are_named_policies_and_their_names_are_checked(in_repo):
    from rlhf_recipes.config.loader import load_recipe

    from .helpers import REPO

    recipe = load_recipe(REPO / "recipes/smoke.yaml", ["variants={dpo_ipo: {method: dpo, loss_type: ipo, beta: 0.5}}"])
    assert list(recipe.methods()) == ["ppo", "dpo", "dpo_ipo"] and recipe.methods()["dpo_ipo"].loss_type == "ipo"
    with pytest.raises(RecipeError, match="variants dpo, samples: a variant's name is its policy's and its stage's"):
        load_recipe(REPO / "recipes/smoke.yaml", ["variants={dpo: {method: kto}, samples: {method: kto}}"])
    with pytest.raises(RecipeError, match="variants.x.beta: 'beta' is a setting of"):
        load_recipe(REPO / "recipes/smoke.yaml", ["variants={x: {method: ppo, beta: 0.1}}"])


@pytest.mark.parametrize(
    "settings",
    [{"loss_type": "grpo", "importance_sampling_level": "sequence"}, {"loss_type": "sapo"}],
    ids=["gspo", "sapo"],
)
def test_grpo_family_options_reach_trl_and_train(settings, inputs, tmp_path, monkeypatch):
    import trl

    handed = {}

    class Recording(trl.GRPOConfig):
        def __init__(self, **kwargs):
            handed.update(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(trl, "GRPOConfig", Recording)
    section = Grpo(**(SECTIONS["grpo"].model_dump(exclude={"method"}) | settings))
    summary = train("grpo", tmp_path, inputs, section=section)
    assert {key: handed[key] for key in settings} == settings
    assert summary["steps"] >= 2

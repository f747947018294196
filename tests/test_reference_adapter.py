"""With LoRA, the reference policy is the base model with its adapter disabled: no second copy."""

import pytest

from rlhf_recipes.generation.scoring import response_logprobs
from rlhf_recipes.models.loading import load_policy, load_tokenizer
from rlhf_recipes.models.policy_set import PolicySet


def test_disabled_adapter_gives_the_base_models_logprobs(tiny_model_dir, tiny_settings, tmp_path):
    from peft import LoraConfig, get_peft_model

    tokenizer = load_tokenizer(str(tiny_model_dir))
    adapter_dir = tmp_path / "adapter"
    # init_lora_weights=False draws B at random too, so the adapter really changes the model
    adapted = get_peft_model(
        load_policy(str(tiny_model_dir), tiny_settings),
        LoraConfig(r=4, init_lora_weights=False, target_modules="all-linear"),
    )
    adapted.save_pretrained(adapter_dir)

    prompts = [tokenizer(p)["input_ids"] for p in ("the soup at the mall", "the new phone")]
    responses = [tokenizer(" was great .")["input_ids"], tokenizer(" was awful and the staff was rude .")["input_ids"]]
    base = response_logprobs(load_policy(str(tiny_model_dir), tiny_settings), prompts, responses, 1.0, 8)

    policies = PolicySet({"reference": str(tiny_model_dir), "ppo": str(adapter_dir)}, tiny_settings, "cpu")
    with policies.reference() as reference:
        assert response_logprobs(reference, prompts, responses, 1.0, 8) == pytest.approx(base, abs=1e-5)
    with policies.policy("ppo") as tuned:
        tuned_logprobs = response_logprobs(tuned, prompts, responses, 1.0, 8)
    assert all(abs(a - b) > 1e-3 for a, b in zip(tuned_logprobs, base, strict=True))
    with policies.policy("reference") as reference:  # still the base after the adapter was used
        assert response_logprobs(reference, prompts, responses, 1.0, 8) == pytest.approx(base, abs=1e-5)
    assert policies.shared.base_model.model is policies.base, "one copy of the base weights"


def test_policies_named_like_study_variants_load_as_adapters(tiny_model_dir, tiny_settings, tmp_path):
    """A study names its variants after their knob values ("ppo_kl_coef_0.02"); PEFT refuses a "." in an
    adapter's name, so the evaluation of a LoRA study used to stop at its first variant."""
    from peft import LoraConfig, get_peft_model

    tokenizer = load_tokenizer(str(tiny_model_dir))
    paths = {"reference": str(tiny_model_dir)}
    for name in ("ppo_kl_coef_0.02", "ppo_kl_coef_0.1"):
        adapted = get_peft_model(
            load_policy(str(tiny_model_dir), tiny_settings),
            LoraConfig(r=4, init_lora_weights=False, target_modules="all-linear"),
        )
        paths[name] = str(tmp_path / name)
        adapted.save_pretrained(paths[name])

    prompts = [tokenizer("the soup at the mall")["input_ids"]]
    responses = [tokenizer(" was great .")["input_ids"]]
    policies = PolicySet(paths, tiny_settings, "cpu")
    scores = {}
    for name in paths:
        with policies.policy(name) as model:
            scores[name] = response_logprobs(model, prompts, responses, 1.0, 8)[0]
    assert len(set(scores.values())) == 3, "each variant is its own adapter, and the reference is neither"

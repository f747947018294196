"""LoRA and 4-bit (QLoRA) paths of the reward, DPO and PPO stages on the tiny model.

Each asserts that training moved every adapter: LoRA's B matrices start at exactly zero, so a
B that is non-zero everywhere after training proves every adapted layer received updates.
"""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from rlhf_recipes.config.base import Lora
from rlhf_recipes.config.schema import Compute, RewardModel
from rlhf_recipes.models.loading import Loading, Tuning
from rlhf_recipes.stages.dpo import Dpo, dpo
from rlhf_recipes.stages.ppo import Ppo, ppo
from rlhf_recipes.stages.reward_model import reward_model

from .helpers import PROMPTS, save_preferences, scored_pair

CPU = Compute(device="cpu")
LORA = Lora(rank=4, alpha=8, dropout=0.0)


def loading(four_bit: bool) -> Loading:
    """LoRA trains in float32; QLoRA loads 4-bit NF4 weights and trains its adapters in bfloat16."""
    return Loading(dtype="bfloat16" if four_bit else "float32", load_in_4bit=four_bit)


def assert_every_adapter_trained(adapter_dir):
    weights = load_file(adapter_dir / "adapter_model.safetensors")
    b_matrices = {name: w for name, w in weights.items() if "lora_B" in name}
    assert b_matrices, "no LoRA weights saved"
    untouched = [name for name, w in b_matrices.items() if (w == 0).all()]
    assert not untouched, untouched


@pytest.mark.parametrize("four_bit", [False, True], ids=["lora", "qlora"])
def test_reward_model_with_lora(tiny_model_dir, preferences_dir, tmp_path, four_bit):
    config = RewardModel(epochs=2, learning_rate=1e-2, batch_size=4, lora=LORA, load_in_4bit=four_bit)
    reward_model(
        settings=config,
        loading=loading(four_bit),
        compute=CPU,
        policy=tiny_model_dir,
        preferences=preferences_dir,
        seed=0,
        out_dir=tmp_path,
    )
    assert_every_adapter_trained(tmp_path / "adapter")
    adapter = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    head = next(w for name, w in adapter.items() if "score" in name)
    merged = load_file(tmp_path / "model.safetensors")
    assert torch.allclose(merged["score.weight"].float(), head.float(), atol=1e-2), "the trained head is merged in"


@pytest.mark.parametrize("four_bit", [False, True], ids=["lora", "qlora"])
def test_dpo_with_lora(tiny_model_dir, preferences_dir, tmp_path, four_bit):
    config = Dpo(epochs=1, learning_rate=1e-2, batch_size=4, max_length_tokens=32)
    dpo(
        settings=config,
        loading=loading(four_bit),
        tuning=Tuning(LORA),
        compute=CPU,
        policy=tiny_model_dir,
        preferences=preferences_dir,
        curve=None,
        seed=0,
        out_dir=tmp_path,
    )
    assert_every_adapter_trained(tmp_path)
    assert not (tmp_path / "model.safetensors").exists(), "a LoRA policy is saved as an adapter"


def train_ppo(policy, reward_dir, prompts_dir, out_dir, loading: Loading, tuning: Tuning) -> None:
    """Two PPO updates of four rollouts on the tiny model; the value model gets the policy's LoRA."""
    config = Ppo(learning_rate=1e-2, total_episodes=8, rollouts_per_update=4, mini_batch_size=2, ppo_epochs=1,
                 whiten_rewards=False)  # fmt: skip
    ppo(settings=config.model_copy(update={"max_new_tokens": 6}), loading=loading, tuning=tuning, compute=CPU,
        policy=policy, reward_model=reward_dir, reward_loading=loading, value_model_lora=tuning.lora,
        prompts=prompts_dir, curve=None, seed=0, out_dir=out_dir)  # fmt: skip


@pytest.mark.ppo
@pytest.mark.parametrize("four_bit", [False, True], ids=["lora", "qlora"])
def test_ppo_with_lora_policy_and_value_model(tiny_model_dir, reward_dir, prompts_dir, tmp_path, four_bit):
    train_ppo(tiny_model_dir, reward_dir, prompts_dir, tmp_path, loading(four_bit), Tuning(LORA, save_merged=True))
    assert_every_adapter_trained(tmp_path)
    assert (tmp_path / "merged" / "model.safetensors").is_file(), "save_merged writes full weights too"


@pytest.mark.ppo
def test_full_fine_tuning_ppo_changes_every_policy_weight(tiny_model_dir, reward_dir, prompts_dir, tmp_path):
    train_ppo(tiny_model_dir, reward_dir, prompts_dir, tmp_path, Loading(), Tuning())
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    assert not [name for name in before if torch.equal(before[name], after[name])]


def test_chat_models_train_on_conversations(tiny_model_dir, tmp_path):
    """With a chat template, pairs are conversational and every stage formats them through it."""
    from rlhf_recipes.generation.formatting import preference_row, prompt_ids, scored_ids
    from rlhf_recipes.models.loading import load_tokenizer

    chat_dir = tmp_path / "chat_model"
    shutil.copytree(tiny_model_dir, chat_dir)
    tokenizer = load_tokenizer(str(chat_dir))
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{{ eos_token }}{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    tokenizer.save_pretrained(chat_dir)
    tokenizer = load_tokenizer(str(chat_dir))
    assert tokenizer.decode(prompt_ids(tokenizer, "the soup")) == "user: the soup<|endoftext|>assistant:"
    assert scored_ids(tokenizer, "the soup", " was great")[-1] == tokenizer.eos_token_id
    rows = [
        scored_pair(p, " was great .", " was awful .") | preference_row(p, " was great .", " was awful .", chat=True)
        for p in PROMPTS
    ]
    prefs = tmp_path / "prefs"
    prefs.mkdir()
    save_preferences(prefs, rows)
    (tmp_path / "rm").mkdir()
    metrics = reward_model(
        settings=RewardModel(epochs=3, learning_rate=1e-2, batch_size=4),
        loading=Loading(),
        compute=CPU,
        policy=chat_dir,
        preferences=prefs,
        seed=0,
        out_dir=tmp_path / "rm",
    )
    assert metrics["train_accuracy"] == 1.0, "one repeated pair is learned exactly"
    (tmp_path / "dpo").mkdir()
    summary = dpo(
        settings=Dpo(epochs=2, learning_rate=1e-2, batch_size=4),
        loading=Loading(),
        tuning=Tuning(),
        compute=CPU,
        policy=chat_dir,
        preferences=prefs,
        curve=None,
        seed=0,
        out_dir=tmp_path / "dpo",
    )
    log = json.loads((tmp_path / "dpo" / "log_history.json").read_text())
    margins = [entry["rewards/margins"] for entry in log if "rewards/margins" in entry]
    assert summary["steps"] == 4 and margins[-1] > margins[0], (
        "DPO learned to prefer the chosen reply of the conversation"
    )

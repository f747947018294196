"""How prompts and responses become tokens, in one place, for plain and for chat models.

With a chat template, a prompt is one user turn and a response one assistant turn. Sampling,
PPO rollouts, reward-model training and reward scoring all use `prompt_ids`, and the reward
model reads `scored_ids`: the same tokens PPO hands it (prompt, response, EOS).
"""


def uses_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids the policy continues from: the templated user turn and assistant header, or the plain text."""
    if uses_chat_template(tokenizer):
        encoded = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(encoded["input_ids"])
    return tokenizer(prompt)["input_ids"]


def scored_ids(tokenizer, prompt: str, response: str) -> list[int]:
    """Token ids the reward model scores: prompt ids + response tokens + EOS, read at the EOS."""
    return (
        prompt_ids(tokenizer, prompt)
        + tokenizer(response, add_special_tokens=False)["input_ids"]
        + [tokenizer.eos_token_id]
    )


def preference_row(prompt: str, chosen: str, rejected: str, chat: bool) -> dict:
    """One pair in TRL's preference format: conversational for chat models, plain text otherwise."""
    if not chat:
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def demonstration_row(prompt: str, completion: str, chat: bool) -> dict:
    """One SFT example in TRL's prompt-completion format, conversational for chat models."""
    if not chat:
        return {"prompt": prompt, "completion": completion}
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "completion": [{"role": "assistant", "content": completion}],
    }


def text_of(turns) -> str:
    """The text of a plain field or of a one-turn conversation."""
    return turns if isinstance(turns, str) else turns[0]["content"]

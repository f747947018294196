"""The training data the methods read, in the formats TRL's trainers take: the labeled pairs (paired,
truncated, or unpaired) and the train prompts."""

from pathlib import Path

from ..generation.formatting import preference_row, prompt_ids, text_of


def train_pairs(preferences: Path):
    """The preferences stage's training pairs in TRL's preference format (prompt, chosen, rejected)."""
    from datasets import load_from_disk

    pairs = load_from_disk(str(preferences / "dataset"), keep_in_memory=True)["train"]
    return pairs.select_columns(["prompt", "chosen", "rejected"])


def truncated_pairs(pairs, tokenizer, max_length_tokens: int, chat: bool):
    """`pairs` with each response cut to fit max_length_tokens after its prompt, as TRL's DPOTrainer truncates:
    CPOTrainer and ORPOTrainer (SimPO, ORPO) do not enforce their max_length. A prompt that leaves no room is
    kept whole with empty responses cut to nothing, so that no pair is silently dropped."""
    from datasets import Dataset

    rows = []
    for pair in pairs:
        prompt = text_of(pair["prompt"])
        room = max(0, max_length_tokens - len(prompt_ids(tokenizer, prompt)) - 1)  # - 1: the EOS the trainers add
        chosen, rejected = (_cut(tokenizer, text_of(pair[side]), room) for side in ("chosen", "rejected"))
        rows.append(preference_row(prompt, chosen, rejected, chat))
    return Dataset.from_list(rows)


def _cut(tokenizer, text: str, tokens: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= tokens else tokenizer.decode(ids[:tokens])


def unpaired(pairs, seed: int):
    """The pairs as KTO's rows (prompt, completion, label: desirable or not), shuffled: TRL's
    unpair_preference_dataset lists every chosen response before every rejected one, and a batch of one
    label alone gives KTO nothing to contrast."""
    from trl import unpair_preference_dataset

    return unpair_preference_dataset(pairs).shuffle(seed=seed)


def prompt_rows(prompts: list[str], chat: bool):
    """Prompts as the online trainers take them: a `prompt` column, a user turn for a chat model."""
    from datasets import Dataset

    return Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] if chat else p for p in prompts]})

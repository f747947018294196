"""Batched sampling of responses from a causal LM: left-padded, KV-cached, grouped by prompt length,
each distinct prompt of a batch read once however many responses it gets."""

from dataclasses import dataclass

from ..errors import RecipeError
from ..models.loading import takes_logits_to_keep
from ..runtime import progress
from ..runtime.distributed import gather_batches


@dataclass
class Response:
    """One sampled response. token_ids end with EOS when the model stopped, and hold no padding."""

    prompt_index: int
    text: str
    token_ids: list[int]


def generate_responses(
    model,
    tokenizer,
    prompt_ids: list[list[int]],
    responses_per_prompt: int,
    max_new_tokens: int,
    temperature: float,
    batch_size: int,
    seed: int,
    top_p: float = 1.0,
    top_k: int = 0,
) -> list[list[Response]]:
    """Sample `responses_per_prompt` responses for every prompt; result[i] holds prompt i's responses.

    prompt_ids: each prompt's token ids (formatting.prompt_ids). Prompts are sorted by length
    before batching so that a batch carries little padding. Each batch draws from its own seed,
    so the same inputs and seed give the same responses on the same machine, however many
    processes share the batches (distributed.batch_starts).
    """
    import torch

    encoded = prompt_ids
    jobs = sorted(
        ((index, sample) for index in range(len(encoded)) for sample in range(responses_per_prompt)),
        key=lambda job: (len(encoded[job[0]]), job),
    )
    device = next(model.parameters()).device
    done: dict[int, list[Response]] = {}
    for start in progress.batches("generating", len(jobs), batch_size):
        batch = jobs[start : start + batch_size]
        distinct = {index: row for row, index in enumerate(dict.fromkeys(index for index, _ in batch))}
        prompts = padded([encoded[index] for index in distinct], tokenizer.pad_token_id, "left")
        input_ids, attention_mask = (tensor.to(device) for tensor in prompts)
        prompt_of_row = torch.tensor([distinct[index] for index, _ in batch], device=device)
        cache = shared_prompt_cache(model, input_ids, attention_mask, prompt_of_row)
        torch.manual_seed(seed * 1_000_003 + start)
        with torch.no_grad():
            output = model.generate(
                input_ids=input_ids[prompt_of_row],
                attention_mask=attention_mask[prompt_of_row],
                cache=cache,
                use_cache=True,  # a checkpoint saved by a Trainer may say use_cache: false
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                top_k=top_k,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        responses = [
            cut_at_eos(row, tokenizer.eos_token_id, tokenizer.pad_token_id)
            for row in output[:, input_ids.shape[1] :].tolist()
        ]
        texts = tokenizer.batch_decode(responses, skip_special_tokens=True)
        done[start] = [
            Response(index, text, ids) for (index, _), text, ids in zip(batch, texts, responses, strict=True)
        ]
        progress.add_tokens(sum(len(ids) for ids in responses))
        del cache, output  # before the next batch's prefill, not after
    results: list[list[Response | None]] = [[None] * responses_per_prompt for _ in encoded]
    for (index, sample), response in zip(jobs, gather_batches(done), strict=True):
        results[index][sample] = response
    return results


def shared_prompt_cache(model, input_ids, attention_mask, prompt_of_row):
    """The KV cache of every prompt but its last token, computed once per distinct prompt and copied to
    the batch rows that sample from it (`prompt_of_row`: each row's prompt). generate() then reads only the last
    prompt token and samples on: several responses to a prompt cost one prompt forward, not several.
    None when there is nothing to share or the model's cache cannot be copied that way; generate() then
    reads the prompts itself. Whether a batch shares depends on its prompts, so the number of forward
    passes can differ between processes: fine for models each process holds whole (sampling and
    evaluation load their own), not for ZeRO-3 shards.
    """
    import torch
    from transformers import DynamicCache

    if (
        len(prompt_of_row) == input_ids.shape[0]
        or input_ids.shape[1] < 2
        or model.generation_config.cache_implementation
    ):
        return None
    positions = position_ids(attention_mask)
    no_logits = {"logits_to_keep": 1} if takes_logits_to_keep(model) else {}
    with torch.no_grad():
        cache = model(
            input_ids=input_ids[:, :-1],
            attention_mask=attention_mask[:, :-1],
            position_ids=positions[:, :-1],
            use_cache=True,
            **no_logits,
        ).cache
    if not isinstance(cache, DynamicCache):
        return None
    cache.reorder_cache(prompt_of_row)
    return cache


def cut_at_eos(token_ids: list[int], eos_token_id: int, pad_token_id: int) -> list[int]:
    """The response up to and including its first EOS, or up to its first pad if it never ended."""
    for position, token in enumerate(token_ids):
        if token == eos_token_id:
            return token_ids[: position + 1]
        if token == pad_token_id:
            return token_ids[:position]
    return token_ids


def position_ids(attention_mask):
    """Positions of left-padded rows as generate() numbers them: 0 at each row's first real token."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def padded(sequences: list[list[int]], pad_token_id: int, side: str):
    """Token lists stacked into (input_ids, attention_mask), shape (batch, longest), padded on `side`
    ("left" or "right") with TRL's pad."""
    import torch
    from trl.trainer.utils import pad

    rows = [torch.tensor(sequence, dtype=torch.long) for sequence in sequences]
    masks = [torch.ones(len(sequence), dtype=torch.long) for sequence in sequences]
    return pad(rows, padding_value=pad_token_id, padding_side=side), pad(masks, padding_value=0, padding_side=side)


def check_context(
    context: int | None, prompts: list[str], prompt_ids: list[list[int]], max_new_tokens: dict[str, int]
) -> None:
    """Refuse prompts that, with the longest response a recipe asks for, do not fit the model's context
    (`context` tokens, None when the model has no limit). max_new_tokens: response lengths by recipe key."""
    if not context:
        return
    longest = max(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))
    key, new_tokens = max(max_new_tokens.items(), key=lambda item: item[1])
    if len(prompt_ids[longest]) + new_tokens > context:
        raise RecipeError(
            f"prompts: the prompt {prompts[longest][:60]!r} is {len(prompt_ids[longest])} tokens; "
            f"with {key}={new_tokens} "
            f"it exceeds the model's context of {context} tokens. Fix: shorten or drop such prompts, or lower {key}."
        )

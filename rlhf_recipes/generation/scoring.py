"""Batched scores of responses by models: log-probabilities under a policy, rewards from a reward model.
Batches are shared among processes when there are several (distributed.py); every process gets all scores."""

from ..models.loading import takes_logits_to_keep
from ..runtime import progress
from ..runtime.distributed import gather_batches
from .formatting import scored_ids
from .sampling import padded, position_ids, shared_prompt_cache


def response_logprobs(
    model, prompt_ids: list[list[int]], response_ids: list[list[int]], temperature: float, batch_size: int
) -> list[float]:
    """Sum over response tokens of log p(token | prompt, earlier tokens), one float per response.

    Logits are divided by `temperature`, the distribution the responses were sampled from. Rows are
    batched by prompt, and each distinct prompt of a batch is read once: its KV cache (left-padded, with
    explicit position ids) is copied to the rows that answer it, and the responses (right-padded) are read
    on top of it. So a prompt answered by several responses, or scored for several policies' responses in
    one call, costs one forward pass, and a batch gives the same numbers as one sequence at a time. The
    float32 log-softmax over the vocabulary runs on response positions only. An empty response has
    log-probability 0. A batch with no prompt to share, or a model whose cache cannot be copied
    that way, is read whole (prompt+response).
    """
    order = sorted(range(len(prompt_ids)), key=lambda row: prompt_ids[row])  # a prompt's rows side by side
    done: dict[int, list[float]] = {}
    for start in progress.batches("log-probabilities", len(order), batch_size):
        rows = order[start : start + batch_size]
        prompts, responses = [prompt_ids[row] for row in rows], [response_ids[row] for row in rows]
        if not any(responses):
            done[start] = [0.0] * len(rows)
        else:
            done[start] = _shared_prompt_logprobs(model, prompts, responses, temperature)
            if done[start] is None:
                done[start] = _whole_sequence_logprobs(model, prompts, responses, temperature)
    by_order = gather_batches(done)
    result = [0.0] * len(order)
    for row, logprob in zip(order, by_order, strict=True):
        result[row] = logprob
    return result


def _shared_prompt_logprobs(model, prompts, responses, temperature: float) -> list[float] | None:
    """One batch on its distinct prompts' KV cache (sampling's `shared_prompt_cache`: every prompt token but
    the last, read once and copied to its rows); each row then reads its prompt's last token and its
    response, and those positions predict the response. None where there is no cache to share."""
    import torch
    from trl.trainer.utils import selective_log_softmax

    device = next(model.parameters()).device
    distinct = {prompt: row for row, prompt in enumerate(dict.fromkeys(tuple(p) for p in prompts))}
    prompt_input, prompt_mask = (tensor.to(device) for tensor in padded([list(p) for p in distinct], 0, "left"))
    prompt_of_row = torch.tensor([distinct[tuple(p)] for p in prompts], device=device)
    cache = shared_prompt_cache(model, prompt_input, prompt_mask, prompt_of_row)
    if cache is None:
        return None
    response_input, response_mask = (tensor.to(device) for tensor in padded(responses, 0, "right"))
    last_position = prompt_mask.sum(-1)[prompt_of_row, None] - 1
    with torch.no_grad():
        logits = model(
            input_ids=torch.cat([prompt_input[prompt_of_row, -1:], response_input], dim=-1),
            attention_mask=torch.cat([prompt_mask[prompt_of_row], response_mask], dim=-1),
            position_ids=last_position + torch.arange(1 + response_input.shape[1], device=device),
            cache=cache,
            use_cache=True,
        ).logits
    token_logprobs = selective_log_softmax(logits[:, :-1].float() / temperature, response_input) * response_mask
    return token_logprobs.sum(-1).tolist()


def _whole_sequence_logprobs(model, prompts, responses, temperature: float) -> list[float]:
    """One batch read whole: left-padded prompt+response, logits for the response positions only."""
    import torch
    from trl.trainer.utils import selective_log_softmax

    device = next(model.parameters()).device
    keep = max(len(r) for r in responses) + 1
    input_ids, attention_mask = padded([p + r for p, r in zip(prompts, responses, strict=True)], 0, "left")
    only_kept = {"logits_to_keep": keep} if takes_logits_to_keep(model) else {}
    with torch.no_grad():
        logits = model(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            position_ids=position_ids(attention_mask).to(device),
            use_cache=False,
            **only_kept,
        ).logits
    # the last keep-1 positions predict the last keep-1 tokens
    predicted = input_ids[:, 1 - keep :].to(device)
    token_logprobs = selective_log_softmax(logits[:, -keep:-1].float() / temperature, predicted)
    return [token_logprobs[row, keep - 1 - len(r) :].sum().item() if r else 0.0 for row, r in enumerate(responses)]


def reward_scores(
    reward_model, tokenizer, prompts: list[str], responses: list[str], batch_size: int, shared: bool = True
) -> list[float]:
    """The reward model's scalar for each prompt+response: formatting.scored_ids, right-padded,
    read at the last non-pad token (the EOS), exactly as it was trained. With `shared`, every process
    holds the same inputs and they share the batches; otherwise (inside a TRL trainer, where each process
    has its own responses) each process scores all of its own."""
    import torch

    device = next(reward_model.parameters()).device
    done: dict[int, list[float]] = {}
    for start in progress.batches("reward-model scores", len(prompts), batch_size, shared):
        encoded = [
            scored_ids(tokenizer, prompt, response)
            for prompt, response in zip(
                prompts[start : start + batch_size], responses[start : start + batch_size], strict=True
            )
        ]
        input_ids, attention_mask = padded(encoded, tokenizer.pad_token_id, "right")  # as TRL's preference collator
        with torch.no_grad():
            logits = reward_model(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), use_cache=False
            ).logits
        done[start] = logits[:, 0].float().tolist()
    return gather_batches(done) if shared else [score for start in sorted(done) for score in done[start]]

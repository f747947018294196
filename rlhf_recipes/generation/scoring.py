"""Batched scores of responses by models: log-probabilities under a policy, rewards from a reward model.
Batches are shared among processes when there are several (distributed.py); every process gets all scores."""

from ..run import progress
from ..run.distributed import gather_batches


def response_logprobs(
    model, prompt_ids: list[list[int]], response_ids: list[list[int]], temperature: float, batch_size: int
) -> list[float]:
    """Sum over response tokens of log p(token | prompt, earlier tokens), one float per response.

    Logits are divided by `temperature`, the distribution the responses were sampled from.
    Sequences are left-padded with explicit position ids, so a batch gives the same numbers
    as one sequence at a time. Left padding puts every response at the end, so the float32
    log-softmax over the vocabulary runs on the last (longest response + 1) positions only, not
    on the prompts, and the model computes logits for those positions only where it takes
    `logits_to_keep`. No KV cache is built. An empty response has log-probability 0.
    """
    import torch
    from trl.trainer.utils import selective_log_softmax

    from ..models.loading import takes_logits_to_keep
    from .sampling import padded, position_ids

    device = next(model.parameters()).device
    keeps_logits = takes_logits_to_keep(model)
    done: dict[int, list[float]] = {}
    for start in progress.batches("log-probabilities", len(prompt_ids), batch_size):
        prompts = prompt_ids[start : start + batch_size]
        responses = response_ids[start : start + batch_size]
        keep = max(len(r) for r in responses) + 1
        if keep == 1:  # every response of the batch is empty
            done[start] = [0.0] * len(responses)
            continue
        input_ids, attention_mask = padded([p + r for p, r in zip(prompts, responses, strict=True)], 0, "left")
        only_kept = {"logits_to_keep": keep} if keeps_logits else {}
        with torch.no_grad():
            logits = model(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                position_ids=position_ids(attention_mask).to(device),
                use_cache=False,
                **only_kept,
            ).logits
        # the last keep-1 positions predict the last keep-1 tokens
        token_logprobs = selective_log_softmax(
            logits[:, -keep:-1].float() / temperature, input_ids[:, 1 - keep :].to(device)
        )
        done[start] = [
            token_logprobs[row, keep - 1 - len(r) :].sum().item() if r else 0.0 for row, r in enumerate(responses)
        ]
    return gather_batches(done)


def reward_scores(
    reward_model, tokenizer, prompts: list[str], responses: list[str], batch_size: int, shared: bool = True
) -> list[float]:
    """The reward model's scalar for each prompt+response: formatting.scored_ids, right-padded,
    read at the last non-pad token (the EOS), exactly as it was trained. With `shared`, every process
    holds the same inputs and they share the batches; otherwise (inside a TRL trainer, where each process
    has its own responses) each process scores all of its own."""
    import torch

    from .formatting import scored_ids
    from .sampling import padded

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

"""Scores of responses on the tiny model: log-probabilities under a policy and reward-model scores."""

import pytest
import torch

from rlhf_recipes.generation.sampling import padded
from rlhf_recipes.generation.scoring import response_logprobs, reward_scores
from rlhf_recipes.models.loading import load_policy, load_reward_model, load_tokenizer

PROMPTS = ["the soup at the mall", "the new phone", "the concert in the small town on sunday"]


def test_logprobs_of_a_batch_of_empty_responses_are_zero(tiny_model_dir, tiny_settings):
    tokenizer, model = load_tokenizer(str(tiny_model_dir)), load_policy(str(tiny_model_dir), tiny_settings)
    prompts = [tokenizer(p)["input_ids"] for p in PROMPTS]
    assert response_logprobs(model, prompts, [[], [], []], temperature=1.0, batch_size=2) == [0.0, 0.0, 0.0]


def test_batched_logprobs_equal_one_at_a_time_and_a_manual_sum(tiny_model_dir, tiny_settings):
    """Left padding with explicit position ids must not change any sequence's log-probability."""
    tokenizer, model = load_tokenizer(str(tiny_model_dir)), load_policy(str(tiny_model_dir), tiny_settings)
    prompts = [tokenizer(p)["input_ids"] for p in PROMPTS]
    responses = [[300, 301, 1], [302], [303, 304, 305, 306]]
    batched = response_logprobs(model, prompts, responses, temperature=0.7, batch_size=8)
    single = [response_logprobs(model, [p], [r], 0.7, 1)[0] for p, r in zip(prompts, responses, strict=True)]
    assert batched == pytest.approx(single, abs=1e-4)
    sequence = torch.tensor([prompts[0] + responses[0]])
    logprobs = torch.log_softmax(model(sequence).logits[0] / 0.7, dim=-1)
    start = len(prompts[0])
    manual = sum(logprobs[start - 1 + t, token].item() for t, token in enumerate(responses[0]))
    assert batched[0] == pytest.approx(manual, abs=1e-4)


def test_greedy_generation_follows_the_scored_distribution(tiny_model_dir, tiny_settings):
    """generate() and response_logprobs see the same distribution: greedy tokens are its argmax."""
    tokenizer, model = load_tokenizer(str(tiny_model_dir)), load_policy(str(tiny_model_dir), tiny_settings)
    ids, mask = padded([tokenizer(p)["input_ids"] for p in PROMPTS], tokenizer.pad_token_id, "left")
    out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=4, pad_token_id=0)
    for row in range(len(PROMPTS)):
        prompt = tokenizer(PROMPTS[row])["input_ids"]
        for step, token in enumerate(out[row, ids.shape[1] :].tolist()):
            logits = model(torch.tensor([prompt + out[row, ids.shape[1] : ids.shape[1] + step].tolist()])).logits
            assert logits[0, -1].argmax().item() == token


def test_reward_scores_do_not_depend_on_batching(tiny_model_dir, tiny_settings):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    torch.manual_seed(0)
    scorer = load_reward_model(str(tiny_model_dir), tokenizer.pad_token_id, tiny_settings)
    responses = [" was great .", " was terrible and the staff was rude .", " ok"]
    batched = reward_scores(scorer, tokenizer, PROMPTS, responses, batch_size=8)
    single = [
        reward_scores(scorer, tokenizer, [p], [r], batch_size=1)[0] for p, r in zip(PROMPTS, responses, strict=True)
    ]
    assert batched == pytest.approx(single, abs=1e-5)


def test_prompts_read_once_give_the_numbers_of_whole_sequences(tiny_model_dir, tiny_settings, monkeypatch):
    """Repeated prompts (several responses, or several policies' responses, to one prompt) are read once a
    batch and their cache shared; every row, an empty response among them, scores as if read whole."""
    from rlhf_recipes.generation import scoring

    tokenizer, model = load_tokenizer(str(tiny_model_dir)), load_policy(str(tiny_model_dir), tiny_settings)
    encoded = [tokenizer(p)["input_ids"] for p in PROMPTS]
    prompts = [encoded[i] for i in (2, 0, 2, 1, 0, 2)]
    responses = [[300, 301, 1], [302], [], [303, 304, 305, 306], [307, 308], [309]]
    whole = [
        scoring._whole_sequence_logprobs(model, [p], [r], 0.7)[0] if r else 0.0
        for p, r in zip(prompts, responses, strict=True)
    ]
    monkeypatch.setattr(scoring, "_whole_sequence_logprobs", None)  # the shared path only
    shared = response_logprobs(model, prompts, responses, temperature=0.7, batch_size=4)
    assert shared == pytest.approx(whole, abs=1e-4)
    assert shared[2] == 0.0 and all(value < 0 for i, value in enumerate(shared) if i != 2)

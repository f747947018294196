"""Generation, log-probabilities and reward scores on the tiny model."""

import pytest
import torch

from rlhf_recipes.models.loading import load_policy, load_reward_model, load_tokenizer
from rlhf_recipes.generation.sampling import cut_at_eos, generate_responses, left_pad
from rlhf_recipes.generation.scoring import response_logprobs, reward_scores

PROMPTS = ["the soup at the mall", "the new phone", "the concert in the small town on sunday"]


def test_cut_at_eos_keeps_eos_and_drops_padding():
    assert cut_at_eos([5, 6, 1, 0, 0], eos_token_id=1, pad_token_id=0) == [5, 6, 1]
    assert cut_at_eos([5, 6, 0, 0], eos_token_id=1, pad_token_id=0) == [5, 6]
    assert cut_at_eos([5, 6, 7], eos_token_id=1, pad_token_id=0) == [5, 6, 7]


def test_left_pad():
    ids, mask = left_pad([[1, 2, 3], [4]], pad_token_id=0)
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_generation_is_reproducible_and_grouped_by_prompt(tiny_model_dir, tiny_settings):
    tokenizer, model = load_tokenizer(str(tiny_model_dir)), load_policy(str(tiny_model_dir), tiny_settings)
    kwargs = dict(responses_per_prompt=3, max_new_tokens=8, temperature=1.0, batch_size=4, seed=1)
    ids = [tokenizer(prompt)["input_ids"] for prompt in PROMPTS]
    first = generate_responses(model, tokenizer, ids, **kwargs)
    assert [len(group) for group in first] == [3, 3, 3]
    assert all(response.prompt_index == index for index, group in enumerate(first) for response in group)
    assert all(0 < len(response.token_ids) <= 8 for group in first for response in group)
    again = generate_responses(model, tokenizer, ids, **kwargs)
    assert [[r.token_ids for r in g] for g in first] == [[r.token_ids for r in g] for g in again]


@pytest.mark.parametrize("adapter", [False, True], ids=["plain", "lora-adapter"])
def test_reading_each_prompt_once_changes_no_response(tiny_model_dir, tiny_settings, monkeypatch, adapter):
    """Responses drawn after a shared prompt cache are the ones drawn when every row reads its own prompt,
    also through a LoRA adapter (as the eval stage and held-out curves sample from policies)."""
    import rlhf_recipes.generation.sampling as sampling

    tokenizer, model = load_tokenizer(str(tiny_model_dir)), load_policy(str(tiny_model_dir), tiny_settings)
    if adapter:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(0)
        model = get_peft_model(model, LoraConfig(r=4, init_lora_weights=False, target_modules="all-linear")).eval()
    ids = [tokenizer(prompt)["input_ids"] for prompt in PROMPTS]
    kwargs = dict(responses_per_prompt=4, max_new_tokens=8, temperature=1.0, batch_size=6, seed=3)
    calls = []
    real = sampling.shared_prompt_cache
    monkeypatch.setattr(sampling, "shared_prompt_cache", lambda *args: calls.append(real(*args)) or calls[-1])
    shared = generate_responses(model, tokenizer, ids, **kwargs)
    assert calls and all(cache is not None for cache in calls), "every batch repeats a prompt, so every batch shares"
    monkeypatch.setattr(sampling, "shared_prompt_cache", lambda *args: None)
    separate = generate_responses(model, tokenizer, ids, **kwargs)
    assert [[r.token_ids for r in g] for g in shared] == [[r.token_ids for r in g] for g in separate]


def test_logprobs_of_a_batch_of_empty_responses_are_zero(tiny_model_dir, tiny_settings):
    tokenizer, model = load_tokenizer(str(tiny_model_dir)), load_policy(str(tiny_model_dir), tiny_settings)
    prompts = [tokenizer(p)["input_ids"] for p in PROMPTS]
    assert response_logprobs(model, prompts, [[], [], []], temperature=1.0, batch_size=2) == [0.0, 0.0, 0.0]


def test_a_frozen_lm_head_gets_a_contiguous_input_during_generation(tiny_model_dir, tiny_settings):
    """A frozen head fed generate()'s non-contiguous last-position view makes PyTorch copy its weight
    once per row (pytorch/pytorch#186148); load_policy's models hand it a contiguous input instead."""
    tokenizer, model = load_tokenizer(str(tiny_model_dir)), load_policy(str(tiny_model_dir), tiny_settings)
    model.requires_grad_(False)  # as under LoRA, 4-bit, or for a reference model
    seen = []
    model.get_output_embeddings().register_forward_hook(lambda head, args, output: seen.append(args[0].is_contiguous()))
    ids, mask = left_pad([tokenizer(p)["input_ids"] for p in PROMPTS], tokenizer.pad_token_id)
    model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=3, pad_token_id=0)
    assert seen and all(seen)


def test_batched_logprobs_equal_one_at_a_time_and_a_manual_sum(tiny_model_dir, tiny_settings):
    """Left padding with explicit position ids must not change any sequence's log-probability."""
    tokenizer, model = load_tokenizer(str(tiny_model_dir)), load_policy(str(tiny_model_dir), tiny_settings)
    prompts = [tokenizer(p)["input_ids"] for p in PROMPTS]
    responses = [[300, 301, 1], [302], [303, 304, 305, 306]]
    batched = response_logprobs(model, prompts, responses, temperature=0.7, batch_size=8)
    single = [response_logprobs(model, [p], [r], 0.7, 1)[0] for p, r in zip(prompts, responses)]
    assert batched == pytest.approx(single, abs=1e-4)
    sequence = torch.tensor([prompts[0] + responses[0]])
    logprobs = torch.log_softmax(model(sequence).logits[0] / 0.7, dim=-1)
    start = len(prompts[0])
    manual = sum(logprobs[start - 1 + t, token].item() for t, token in enumerate(responses[0]))
    assert batched[0] == pytest.approx(manual, abs=1e-4)


def test_greedy_generation_follows_the_scored_distribution(tiny_model_dir, tiny_settings):
    """generate() and response_logprobs see the same distribution: greedy tokens are its argmax."""
    tokenizer, model = load_tokenizer(str(tiny_model_dir)), load_policy(str(tiny_model_dir), tiny_settings)
    ids, mask = left_pad([tokenizer(p)["input_ids"] for p in PROMPTS], tokenizer.pad_token_id)
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
    single = [reward_scores(scorer, tokenizer, [p], [r], batch_size=1)[0] for p, r in zip(PROMPTS, responses)]
    assert batched == pytest.approx(single, abs=1e-5)

"""Sampling on the tiny model: padding, cutting at EOS, reproducible batches, each prompt read once."""

import pytest
import torch

from rlhf_recipes.generation.sampling import cut_at_eos, generate_responses, padded
from rlhf_recipes.models.loading import load_policy, load_tokenizer

PROMPTS = ["the soup at the mall", "the new phone", "the concert in the small town on sunday"]


def test_cut_at_eos_keeps_eos_and_drops_padding():
    assert cut_at_eos([5, 6, 1, 0, 0], eos_token_id=1, pad_token_id=0) == [5, 6, 1]
    assert cut_at_eos([5, 6, 0, 0], eos_token_id=1, pad_token_id=0) == [5, 6]
    assert cut_at_eos([5, 6, 7], eos_token_id=1, pad_token_id=0) == [5, 6, 7]


def test_padding_on_either_side_with_an_empty_sequence():
    ids, mask = padded([[1, 2, 3], [4], []], 0, "left")
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]
    ids, mask = padded([[1, 2, 3], [4]], 9, "right")
    assert ids.tolist() == [[1, 2, 3], [4, 9, 9]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_generation_is_reproducible_and_grouped_by_prompt(tiny_model_dir, tiny_settings):
    tokenizer, model = load_tokenizer(str(tiny_model_dir)), load_policy(str(tiny_model_dir), tiny_settings)
    kwargs = {"responses_per_prompt": 3, "max_new_tokens": 8, "temperature": 1.0, "batch_size": 4, "seed": 1}
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
    kwargs = {"responses_per_prompt": 4, "max_new_tokens": 8, "temperature": 1.0, "batch_size": 6, "seed": 3}
    calls = []
    real = sampling.shared_prompt_cache
    monkeypatch.setattr(sampling, "shared_prompt_cache", lambda *args: calls.append(real(*args)) or calls[-1])
    shared = generate_responses(model, tokenizer, ids, **kwargs)
    assert calls and all(cache is not None for cache in calls), "every batch repeats a prompt, so every batch shares"
    monkeypatch.setattr(sampling, "shared_prompt_cache", lambda *args: None)
    separate = generate_responses(model, tokenizer, ids, **kwargs)
    assert [[r.token_ids for r in g] for g in shared] == [[r.token_ids for r in g] for g in separate]


def test_a_frozen_lm_head_gets_a_contiguous_input_during_generation(tiny_model_dir, tiny_settings):
    """A frozen head fed generate()'s non-contiguous last-position view makes PyTorch copy its weight
    once per row (pytorch/pytorch#186148); load_policy's models hand it a contiguous input instead."""
    tokenizer, model = load_tokenizer(str(tiny_model_dir)), load_policy(str(tiny_model_dir), tiny_settings)
    model.requires_grad_(False)  # as under LoRA, 4-bit, or for a reference model
    seen = []
    model.get_output_embeddings().register_forward_hook(lambda head, args, output: seen.append(args[0].is_contiguous()))
    ids, mask = padded([tokenizer(p)["input_ids"] for p in PROMPTS], tokenizer.pad_token_id, "left")
    model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=3, pad_token_id=0)
    assert seen and all(seen)


def test_a_gpt2_style_tokenizer_borrows_the_nul_byte_token_as_pad(tmp_path):
    """GPT-2's only special token is <|endoftext|> (EOS and BOS): the pad is its byte-level token for NUL."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer, bpe.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(["the film was great", "the film was dull"], trainer)
    PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>").save_pretrained(
        tmp_path
    )
    tokenizer = load_tokenizer(str(tmp_path))
    assert tokenizer.pad_token == "Ā" and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.decode(tokenizer("the film").input_ids) == "the film"  # text never holds the pad

"""Sampling speed: the tool's batched sampler vs a plain batched `model.generate` loop, same prompts.

    python benchmarks/generation.py [recipe] [--prompts 64] [--repeats 3]

Both sample the recipe's sampling.responses_per_prompt responses to every prompt with its
temperature, token limit and batch size (sequences per batch), in the model's dtype, with the KV
cache. The plain loop is what one writes by hand: prompts in file order, each batch tokenized with
padding, `num_return_sequences` for the responses. The tool sorts prompts by length (less padding),
reuses token ids, reads each distinct prompt of a batch once and copies its KV cache to the rows
that sample from it, decodes in batches and draws a seed per batch. New tokens count each response
up to and including its EOS.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from time_recipe import machine


def plain_loop(model, tokenizer, prompts, batch_size, sampling):
    tokens, per_batch = 0, max(1, batch_size // sampling.responses_per_prompt)
    for start in range(0, len(prompts), per_batch):
        texts = [
            tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
            for p in prompts[start : start + per_batch]
        ]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            output = model.generate(
                **batch,
                do_sample=True,
                temperature=sampling.temperature,
                top_p=1.0,
                top_k=0,
                max_new_tokens=sampling.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                num_return_sequences=sampling.responses_per_prompt,
            )
        for row in output[:, batch["input_ids"].shape[1] :].tolist():
            tokens += next(
                (i + 1 for i, t in enumerate(row) if t == tokenizer.eos_token_id),
                len(row) - row.count(tokenizer.pad_token_id),
            )
        tokenizer.batch_decode(output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    return tokens


def tool(model, tokenizer, prompts, batch_size, sampling):
    from rlhf_recipes.generation.formatting import prompt_ids
    from rlhf_recipes.generation.sampling import generate_responses

    groups = generate_responses(
        model,
        tokenizer,
        [prompt_ids(tokenizer, p) for p in prompts],
        sampling.responses_per_prompt,
        sampling.max_new_tokens,
        sampling.temperature,
        batch_size,
        seed=0,
    )
    return sum(len(response.token_ids) for group in groups for response in group)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", nargs="?", default="recipes/smollm2_sentiment.yaml")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from rlhf_recipes.cli import _quiet_libraries
    from rlhf_recipes.config.loader import load_recipe
    from rlhf_recipes.models.builtin import builtin_gguf_path
    from rlhf_recipes.models.gguf_cache import converted_gguf
    from rlhf_recipes.models.loading import Loading, device_for, load_policy, load_tokenizer

    _quiet_libraries(False)
    recipe = load_recipe(Path(args.recipe))
    path = str(converted_gguf(recipe.model.gguf or builtin_gguf_path(recipe.model.builtin)))
    tokenizer, model = load_tokenizer(path), load_policy(path, Loading.of(recipe.model, device_for(recipe.compute)))
    rows = [json.loads(line) for line in Path("data/sentiment/prompts.jsonl").read_text().splitlines()]
    prompts = [row["prompt"] for row in rows][: args.prompts]
    batch_size = recipe.samples.batch_size
    speeds = {"plain model.generate loop": [], "rlhf-recipes generate_responses": []}
    for _ in range(args.repeats):
        for name, function in (("plain model.generate loop", plain_loop), ("rlhf-recipes generate_responses", tool)):
            torch.manual_seed(0)
            started = time.perf_counter()
            tokens = function(model, tokenizer, prompts, batch_size, recipe.samples)
            speeds[name].append(tokens / (time.perf_counter() - started))
    print(
        f"{len(prompts)} prompts, {recipe.samples.responses_per_prompt} responses each, batch {batch_size}, "
        f"up to {recipe.samples.max_new_tokens} new tokens, "
        f"{recipe.model.dtype}; median of {args.repeats} on {machine()}\n"
    )
    print("| sampler | new tokens/s (median) | runs |\n|---|---|---|")
    for name, values in speeds.items():
        print(f"| {name} | {statistics.median(values):,.0f} | {', '.join(f'{v:,.0f}' for v in values)} |")


if __name__ == "__main__":
    main()

"""Sample stage: K responses per prompt from the initial policy, for the train and the held-out prompts.

Held-out responses are labeled too, but only to measure the reward model on pairs from prompts
it never saw; they are never trained on.
"""

from pathlib import Path

from ..run.distributed import is_main
from ..generation.formatting import prompt_ids
from ..models.loading import device_for, load_policy, load_tokenizer
from ..config.schema import Compute, Model, Sampling
from ..generation.sampling import check_context, generate_responses


def sample_responses(
    config: Sampling,
    settings: Model,
    compute: Compute,
    policy: str,
    train: list[str],
    heldout: list[str],
    out_dir: Path,
    seed: int,
    max_new_tokens: dict[str, int],
):
    """Write a `datasets` dataset to out_dir: one row per response (split, prompt_index, prompt, response).

    max_new_tokens: every stage's response length by recipe key; every prompt must fit the model's
    context with the longest of them, which is checked here, before any sampling.
    """
    from datasets import Dataset

    tokenizer = load_tokenizer(policy, settings.trust_remote_code)
    model = load_policy(policy, settings, device_for(compute))
    every = train + heldout
    check_context(model, every, [prompt_ids(tokenizer, prompt) for prompt in every], max_new_tokens)
    rows = []
    for split, prompts in (("train", train), ("heldout", heldout)):
        groups = generate_responses(
            model,
            tokenizer,
            [prompt_ids(tokenizer, prompt) for prompt in prompts],
            responses_per_prompt=config.responses_per_prompt,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            batch_size=config.batch_size,
            seed=seed,
        )
        for index, responses in enumerate(groups):
            for response in responses:
                rows.append(
                    {
                        "split": split,
                        "prompt_index": index,
                        "prompt": prompts[index],
                        "response": response.text,
                        "response_tokens": len(response.token_ids),
                        "finished": bool(response.token_ids) and response.token_ids[-1] == tokenizer.eos_token_id,
                    }
                )
    if is_main():
        Dataset.from_list(rows).save_to_disk(str(out_dir))
    finished = sum(row["finished"] for row in rows) / len(rows)
    return {"responses": len(rows), "finished_fraction": round(finished, 4)}

"""Samples stage: K responses per prompt from the initial policy, for the train and the held-out prompts.

Held-out responses are labeled too, but only to measure the reward model on pairs from prompts
it never saw; they are never trained on.
"""

from pathlib import Path

from ..config.schema import Samples
from ..generation.formatting import prompt_ids
from ..generation.sampling import generate_responses
from ..models.loading import Loading, load_policy, load_tokenizer
from ..runtime.distributed import is_main
from ..runtime.prompt_files import read_prompts
from ..runtime.stage import stage


@stage(version=1)
def samples(
    *, settings: Samples, loading: Loading, device: str, policy: Path | str, prompts: Path, seed: int, out_dir: Path
):
    """Write a `datasets` dataset to out_dir: one row per response (split, prompt_index, prompt, response,
    response_tokens, finished). prompts: the prompts stage's output."""
    from datasets import Dataset

    tokenizer = load_tokenizer(str(policy), loading.trust_remote_code)
    network = load_policy(str(policy), loading, device)
    rows = []
    for split in ("train", "heldout"):
        texts = read_prompts(prompts, split)
        groups = generate_responses(
            network,
            tokenizer,
            [prompt_ids(tokenizer, prompt) for prompt in texts],
            responses_per_prompt=settings.responses_per_prompt,
            max_new_tokens=settings.max_new_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=settings.top_k,
            batch_size=settings.batch_size,
            seed=seed,
        )
        for index, responses in enumerate(groups):
            for response in responses:
                rows.append(
                    {
                        "split": split,
                        "prompt_index": index,
                        "prompt": texts[index],
                        "response": response.text,
                        "response_tokens": len(response.token_ids),
                        "finished": bool(response.token_ids) and response.token_ids[-1] == tokenizer.eos_token_id,
                    }
                )
    if is_main():
        Dataset.from_list(rows).save_to_disk(str(out_dir))
    finished = sum(row["finished"] for row in rows) / len(rows)
    return {"responses": len(rows), "finished_fraction": round(finished, 4)}

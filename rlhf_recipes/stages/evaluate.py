"""Evaluate stage: every policy answers the held-out prompts; gold labeler, reward model and KL judge them."""

import json
from pathlib import Path

from ..formatting import prompt_ids
from ..labelers import make_labeler, score_all
from ..metrics import kl_estimates, mean, std, win_rate, win_tie_loss
from ..models import device_for, load_reward_model, load_tokenizer
from ..policy_set import PolicySet
from ..recipe import Compute, Evaluation, Labeler, Model, Reward
from ..sampling import generate_responses
from ..scoring import response_logprobs, reward_scores


def evaluate_policies(
    config: Evaluation,
    labeler: Labeler,
    settings: Model,
    reward_config: Reward,
    compute: Compute,
    policies: dict[str, str],
    reward_model: str,
    heldout: list[str],
    out_dir: Path,
    seed: int,
) -> dict:
    """Metrics per policy; policies["reference"] is the initial policy every other is compared with.

    Every policy samples with the same seed. Writes generations.jsonl (one row per response)
    and metrics.json to out_dir, and returns the metrics.
    """
    device = device_for(compute)
    tokenizer = load_tokenizer(policies["reference"], settings.trust_remote_code)
    models = PolicySet(policies, settings, device)
    scorer = load_reward_model(reward_model, tokenizer.pad_token_id, settings, device, reward_config.load_in_4bit)
    gold = make_labeler(labeler)
    encoded = [prompt_ids(tokenizer, prompt) for prompt in heldout]
    rows: dict[str, list[dict]] = {}
    for name in policies:
        with models.policy(name) as model:
            groups = generate_responses(
                model,
                tokenizer,
                encoded,
                responses_per_prompt=config.responses_per_prompt,
                max_new_tokens=config.max_new_tokens,
                temperature=config.temperature,
                batch_size=config.batch_size,
                seed=seed,
            )
            responses = [response for group in groups for response in group]
            ids = [encoded[response.prompt_index] for response in responses]
            tokens = [response.token_ids for response in responses]
            own = response_logprobs(model, ids, tokens, config.temperature, config.batch_size)
        if name == "reference":
            base = own
        else:
            with models.reference() as reference:
                base = response_logprobs(reference, ids, tokens, config.temperature, config.batch_size)
        prompts = [heldout[response.prompt_index] for response in responses]
        texts = [response.text for response in responses]
        rows[name] = [
            {
                "policy": name,
                "prompt_index": response.prompt_index,
                "prompt": prompt,
                "response": response.text,
                "gold": gold_score,
                "reward_model": learned,
                "kl": kl,
                "words": len(response.text.split()),
            }
            for response, prompt, gold_score, learned, kl in zip(
                responses,
                prompts,
                score_all(gold, texts),
                reward_scores(scorer, tokenizer, prompts, texts, config.batch_size),
                kl_estimates(own, base),
            )
        ]
    metrics = {name: summarise(policy_rows, rows["reference"]) for name, policy_rows in rows.items()}
    with open(out_dir / "generations.jsonl", "w", encoding="utf-8") as out:
        for policy_rows in rows.values():
            for row in policy_rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def summarise(rows: list[dict], reference_rows: list[dict]) -> dict:
    """One policy's entry in metrics.json; responses are paired with the reference's by position."""
    gold = [row["gold"] for row in rows]
    wins, ties, losses = win_tie_loss(gold, [row["gold"] for row in reference_rows])
    return {
        "gold_mean": mean(gold),
        "gold_std": std(gold),
        "reward_model_mean": mean([row["reward_model"] for row in rows]),
        "kl_mean": mean([row["kl"] for row in rows]),
        "win_rate_vs_reference": win_rate(wins, ties, losses),
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "mean_length_words": mean([row["words"] for row in rows]),
        "n": len(rows),
    }

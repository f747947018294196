"""Evaluation stage: every policy answers the held-out prompts; the gold labeler, the learned reward model
and the KL to the reference judge them. Also the best-of-N baselines and DPO's implicit reward."""

import json
from pathlib import Path

from ..config.labelers import Labeler
from ..config.schema import Evaluation, Samples
from ..generation.formatting import prompt_ids, scored_ids, text_of
from ..generation.sampling import generate_responses
from ..generation.scoring import response_logprobs, reward_scores
from ..labeling.labelers import gold_scores, make_labeler
from ..metrics import kl_estimates, pair_accuracies
from ..models.ensemble import load_reward
from ..models.loading import Loading, load_tokenizer
from ..models.policy_set import PolicySet
from ..runtime.distributed import is_main
from ..runtime.prompt_files import read_prompts
from ..runtime.stage import stage


@stage(version=2)
def evaluation(
    *,
    settings: Evaluation,
    gold_labeler: Labeler | None,
    loading: Loading,
    reward_loading: Loading,
    device: str,
    policies: dict[str, Path | str],
    reward_model: Path,
    best_of_n_from_samples: bool,
    prompts: Path,
    preferences: Path,
    implicit_rewards: dict[str, float],
    seed: int,
    out_dir: Path,
):
    """policies: name -> model or adapter directory; policies["reference"] is what every other is compared with.

    Every policy samples with the same seed. Writes to out_dir: generations.jsonl (a row per
    response: gold, reward_model, kl, words), best_of_n.jsonl (the reference's samples for the
    best-of-N baselines, with their scores: the reward_model stage's scored held-out samples when
    best_of_n_from_samples) and, for the policies whose beta * log(pi / pi_ref) is an implicit reward
    (`implicit_rewards`: name -> beta), implicit_rewards.json: that reward's accuracy on the held-out pairs.
    """
    paths = {name: str(path) for name, path in policies.items()}
    heldout = read_prompts(prompts, "heldout")
    tokenizer = load_tokenizer(paths["reference"], loading.trust_remote_code)
    models = PolicySet(paths, loading, device)
    scorer = load_reward(reward_model, tokenizer.pad_token_id, reward_loading, device)
    gold = make_labeler(gold_labeler, device) if gold_labeler is not None else None  # None: no gold judge
    encoded = [prompt_ids(tokenizer, prompt) for prompt in heldout]
    answers = {name: policy_answers(name, models, tokenizer, encoded, settings, seed) for name in paths}
    base = reference_logprobs(models, encoded, answers, settings)
    rows = [
        row
        for name, (responses, own) in answers.items()
        for row in judged(name, responses, own, base[name], tokenizer, scorer, gold, heldout, settings)
    ]
    write_jsonl(out_dir / "generations.jsonl", rows)
    if settings.best_of_n and gold is not None:  # best-of-N judged by the reward model it picks with says nothing
        if best_of_n_from_samples:
            rows = read_scored_heldout_samples(reward_model / "heldout_responses.jsonl")
        else:
            with models.reference() as reference:
                rows = best_of_n_samples(
                    reference,
                    tokenizer,
                    scorer,
                    gold,
                    heldout,
                    encoded,
                    max(settings.best_of_n),
                    settings,
                    seed + 1,
                )
        write_jsonl(out_dir / "best_of_n.jsonl", rows)
    if implicit_rewards:
        from datasets import load_from_disk

        pairs = load_from_disk(str(preferences / "dataset"), keep_in_memory=True)["heldout"]
        with models.reference() as model:  # once for every policy with an implicit reward
            reference = pair_logprobs(model, tokenizer, pairs, settings.batch_size)
        accuracies = {
            name: implicit_reward_accuracy(models, name, tokenizer, pairs, beta, settings.batch_size, reference)
            for name, beta in implicit_rewards.items()
        }
        if is_main():
            (out_dir / "implicit_rewards.json").write_text(json.dumps(accuracies, indent=2) + "\n")
    return {"policies": len(paths), "responses_each": len(heldout) * settings.responses_per_prompt}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """One JSON object a line; by the main process only (every process holds the same rows)."""
    if is_main():
        with open(path, "w", encoding="utf-8") as out:
            out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def policy_answers(name, models: PolicySet, tokenizer, encoded, config, seed) -> tuple[list, list[float] | None]:
    """One policy's responses to every held-out prompt, with their log-probabilities under that policy
    (None for the reference: its KL to itself is 0, so they would only cancel)."""
    with models.policy(name) as model:
        groups = generate_responses(
            model,
            tokenizer,
            encoded,
            config.responses_per_prompt,
            config.max_new_tokens,
            config.temperature,
            config.batch_size,
            seed,
        )
        responses = [response for group in groups for response in group]
        if name == "reference":
            return responses, None
        ids = [encoded[response.prompt_index] for response in responses]
        tokens = [response.token_ids for response in responses]
        return responses, response_logprobs(model, ids, tokens, config.temperature, config.batch_size)


def reference_logprobs(models: PolicySet, encoded, answers: dict[str, tuple], config) -> dict[str, list | None]:
    """Every policy's responses scored by the reference, in one call: each held-out prompt is read once a
    batch, not once per policy. The reference's own responses get None (their KL is 0)."""
    base = {name: None if own is None else [] for name, (_, own) in answers.items()}
    scored = [(name, response) for name in base if base[name] is not None for response in answers[name][0]]
    if scored:
        with models.reference() as reference:
            logprobs = response_logprobs(
                reference,
                [encoded[response.prompt_index] for _, response in scored],
                [response.token_ids for _, response in scored],
                config.temperature,
                config.batch_size,
            )
        for (name, _), logprob in zip(scored, logprobs, strict=True):
            base[name].append(logprob)
    return base


def judged(name, responses, own, base, tokenizer, scorer, gold, heldout, config) -> list[dict]:
    """One policy's responses as generations.jsonl rows, judged by gold, the reward model and KL."""
    prompts = [heldout[response.prompt_index] for response in responses]
    texts = [response.text for response in responses]
    kls = kl_estimates(own, base) if own is not None else [0.0] * len(responses)
    return [
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
            gold_scores(gold, texts, prompts),
            reward_scores(scorer, tokenizer, prompts, texts, config.batch_size),
            kls,
            strict=True,
        )
    ]


def best_of_n_samples(reference, tokenizer, scorer, gold, heldout, encoded, n: int, config, seed: int) -> list[dict]:
    """n samples of the reference per held-out prompt, with learned and gold scores; best-of-N for any
    N <= n picks, per prompt, the highest learned reward among the first N (nested samples)."""
    groups = generate_responses(
        reference, tokenizer, encoded, n, config.max_new_tokens, config.temperature, config.batch_size, seed
    )
    rows = [
        {"prompt_index": index, "sample": sample, "prompt": heldout[index], "response": response.text}
        for index, group in enumerate(groups)
        for sample, response in enumerate(group)
    ]
    texts = [row["response"] for row in rows]
    prompts = [row["prompt"] for row in rows]
    learned = reward_scores(scorer, tokenizer, prompts, texts, config.batch_size)
    for row, gold_score, learned_score in zip(rows, gold_scores(gold, texts, prompts), learned, strict=True):
        row |= {"gold": gold_score, "reward_model": learned_score, "words": len(row["response"].split())}
    return rows


def samples_serve_best_of_n(samples: Samples, evaluation: Evaluation) -> bool:
    """Are the samples stage's held-out responses draws of the very distribution evaluation samples from
    (same policy, temperature, length; no top-p or top-k), and enough of them per prompt for every N?
    Then best-of-N reuses them, already scored by gold and by the reward model, instead of sampling anew."""
    s, e = samples, evaluation
    same = (s.temperature, s.max_new_tokens, s.top_p, s.top_k) == (e.temperature, e.max_new_tokens, 1.0, 0)
    return same and bool(e.best_of_n) and max(e.best_of_n) <= s.responses_per_prompt


def read_scored_heldout_samples(path: Path) -> list[dict]:
    """The reward stage's scored held-out samples as best-of-N rows, numbered in sampling order per prompt."""
    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    counts: dict[int, int] = {}
    for row in rows:
        row["sample"] = counts.get(row["prompt_index"], 0)
        counts[row["prompt_index"]] = row["sample"] + 1
        row["source"] = "samples stage"
    return rows


def pair_logprobs(model, tokenizer, pairs, batch_size: int) -> tuple[list[float], list[float]]:
    """log pi(chosen | prompt) and log pi(rejected | prompt) of every pair, as the policy scores them."""
    prompts = [prompt_ids(tokenizer, text_of(p)) for p in pairs["prompt"]]

    def response_ids(column: str) -> list[list[int]]:
        return [
            scored_ids(tokenizer, text_of(p), text_of(r))[len(ids) :]
            for p, r, ids in zip(pairs["prompt"], pairs[column], prompts, strict=True)
        ]

    # chosen and rejected in one call, so that each prompt is read once for both
    responses = response_ids("chosen") + response_ids("rejected")
    both = response_logprobs(model, prompts + prompts, responses, 1.0, batch_size)
    return both[: len(prompts)], both[len(prompts) :]


def implicit_reward_accuracy(
    models: PolicySet, name: str, tokenizer, pairs, beta: float, batch_size: int, reference: tuple
) -> dict:
    """The implicit reward r(x, y) = beta * log(pi(y|x) / pi_ref(y|x)) of policy `name` (DPO, online DPO,
    KTO) as a classifier of held-out pairs. `reference`: the reference's pair_logprobs, computed once for
    every such policy."""
    with models.policy(name) as model:
        policy_c, policy_r = pair_logprobs(model, tokenizer, pairs, batch_size)
    ref_c, ref_r = reference
    margins = [beta * ((pc - rc) - (pr - rr)) for pc, rc, pr, rr in zip(policy_c, ref_c, policy_r, ref_r, strict=True)]
    return pair_accuracies(margins, pairs["chosen_gold"], pairs["rejected_gold"], pairs["noise_free"]) | {"beta": beta}

"""Held-out evaluation during training: every k steps the policy answers a fixed set of held-out
prompts, and gold score, learned reward and KL to the reference are recorded, so the best point
of a run (and over-optimization past it) can be seen."""

import json
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainerCallback

from ..config.labelers import Labeler
from ..generation.formatting import prompt_ids
from ..generation.sampling import generate_responses
from ..generation.scoring import response_logprobs, reward_scores
from ..labeling.labelers import make_labeler, score_all
from ..metrics import kl_estimates, mean, std
from ..models.ensemble import load_reward
from ..models.loading import Loading
from ..runtime import progress
from ..runtime.distributed import is_main
from ..runtime.prompt_files import read_prompts


@dataclass(frozen=True)
class Curve:
    """A held-out curve as a training stage is handed it (and fingerprinted): every `every` optimizer
    steps (PPO: updates), the first `prompts` held-out prompts of the prompts stage's output `heldout`
    answered once each, as evaluation samples them, judged by `gold` and the reward model (the
    reward_model stage's output, loaded as `reward_loading` says)."""

    every: int
    heldout: Path
    prompts: int
    max_new_tokens: int
    temperature: float
    batch_size: int
    gold: Labeler | None  # None: no gold judge (your own pairs without gold_labeler)
    reward_model: Path
    reward_loading: Loading


class HeldoutCurve(TrainerCallback):
    def __init__(self, curve: Curve, tokenizer, scorer, policy, reference, seed: int, device: str = "cpu"):
        """scorer: the loaded reward model; policy: the model being trained; reference: the reference model,
        or None for the policy with its LoRA adapter disabled; device: where a model gold labeler runs."""

        self.curve, self.seed = curve, seed
        self.gold = make_labeler(curve.gold, device) if curve.gold is not None else None
        self.tokenizer, self.scorer = tokenizer, scorer
        self.policy, self.reference = policy, reference
        self.prompts = read_prompts(curve.heldout, "heldout")[: curve.prompts]
        self.encoded = [prompt_ids(tokenizer, prompt) for prompt in self.prompts]
        self.path = self.resumed_step = None
        self.log = None  # sends a point's means to the trainer's experiment trackers (tracking.to_trackers), if any
        self.offset = 0  # optimizer steps of earlier training runs (RSFT's earlier rounds)
        self.points: list[dict] = []

    @classmethod
    def start(cls, curve: Curve | None, tokenizer, device: str, policy, reference, seed: int, scorer=None):
        """The callback for `curve` (None when the stage draws none); loads the reward model unless given."""
        if curve is None:
            return None
        if scorer is None:
            scorer = load_reward(curve.reward_model, tokenizer.pad_token_id, curve.reward_loading, device)
        return cls(curve, tokenizer, scorer, policy, reference, seed, device)

    def saved_to(self, path: Path, resumed_from: str | None = None, offset: int = 0) -> "HeldoutCurve":
        """Save every point to `path` as it is measured; resuming from a checkpoint keeps the points
        measured up to that checkpoint's step instead of measuring step 0 again. `offset`: optimizer steps
        taken before this training run began (its steps are numbered after them)."""
        self.path, self.offset = path, offset
        self.resumed_step = int(resumed_from.rsplit("-", 1)[-1]) if resumed_from else None
        return self

    def on_train_begin(self, args, state, control, **kwargs):
        if self.path is not None and self.path.is_file() and (self.resumed_step is not None or self.offset):
            kept = self.offset + (self.resumed_step or 0)  # points up to where training resumes
            self.points = [p for p in json.loads(self.path.read_text()) if p["step"] <= kept]
        else:
            self.measure(self.offset)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.curve.every == 0:
            self.measure(self.offset + state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if not self.points or self.points[-1]["step"] != self.offset + state.global_step:
            self.measure(self.offset + state.global_step)

    def measure(self, step: int) -> None:
        with progress.uncounted():
            self._measure(step)

    def _measure(self, step: int) -> None:
        import torch

        rng = torch.get_rng_state()  # leave training's random stream as it was
        was_training = self.policy.training
        self.policy.eval()
        e = self.curve
        groups = generate_responses(
            self.policy, self.tokenizer, self.encoded, 1, e.max_new_tokens, e.temperature, e.batch_size, self.seed
        )
        responses = [group[0] for group in groups]
        ids, tokens = self.encoded, [r.token_ids for r in responses]
        own = response_logprobs(self.policy, ids, tokens, e.temperature, e.batch_size)
        with self._reference() as reference:
            base = response_logprobs(reference, ids, tokens, e.temperature, e.batch_size)
        texts = [r.text for r in responses]
        learned = reward_scores(self.scorer, self.tokenizer, self.prompts, texts, e.batch_size)
        kl = kl_estimates(own, base)
        point = {"step": step, "reward_model_mean": mean(learned), "kl_mean": mean(kl), "n": len(texts)}
        if self.gold is not None:
            gold = score_all(self.gold, texts, self.prompts)
            point |= {"gold_mean": mean(gold), "gold_std": std(gold), "gold": [round(value, 6) for value in gold]}
        # per prompt, in the same order at every point: checkpoints compare paired by prompt
        point |= {"reward_model": [round(value, 6) for value in learned], "kl": [round(value, 6) for value in kl]}
        self.points.append(point)
        if was_training:
            self.policy.train()
        torch.set_rng_state(rng)
        if self.path is not None:
            self.save(self.path)
        if self.log is not None:
            point = self.points[-1]
            self.log(
                {f"heldout/{key}": point[key] for key in ("gold_mean", "reward_model_mean", "kl_mean") if key in point}
            )

    @contextmanager
    def _reference(self):
        if self.reference is not None:
            with nullcontext(self.reference) as reference:
                yield reference
        else:
            with self.policy.disable_adapter():
                yield self.policy

    def save(self, path: Path) -> None:
        if is_main():
            path.write_text(json.dumps(self.points, indent=1) + "\n")

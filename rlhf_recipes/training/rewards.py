"""The learned reward model as the reward function of TRL's online trainers (RLOO, GRPO, online DPO).

Given a sequence-classification model, those trainers score `prompt + decoded completion` re-tokenized
without special tokens, so the reward model never sees the EOS token it was trained to be read at
(TRL's RewardTrainer appends it). This callable scores every response exactly as the reward model was
trained and as evaluation scores it (formatting.scored_ids: the prompt as the policy saw it, the response,
EOS), and subtracts `missing_eos_penalty` from a response that never ended.
"""

from ..generation.formatting import text_of
from ..generation.scoring import reward_scores


class LearnedReward:
    __name__ = "learned_reward"  # TRL logs rewards/<__name__>/mean and /std

    def __init__(self, scorer, tokenizer, missing_eos_penalty: float | None):
        """scorer: the loaded reward model, on this process's device."""
        self.scorer, self.tokenizer, self.penalty = scorer, tokenizer, missing_eos_penalty
        self.calls = 0  # responses scored, for the cost table

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list[float]:
        """prompts, completions: text (or one-turn conversations) of this process's responses; completion_ids:
        their token ids, with an EOS when the response ended (online DPO pads after it, RLOO and GRPO cut there)."""
        prompt_texts = [text_of(prompt) for prompt in prompts]
        texts = [text_of(completion) for completion in completions]
        scores = reward_scores(self.scorer, self.tokenizer, prompt_texts, texts, batch_size=len(texts), shared=False)
        self.calls += len(scores)
        if self.penalty:
            eos = self.tokenizer.eos_token_id
            scores = [s if eos in ids else s - self.penalty for s, ids in zip(scores, completion_ids, strict=True)]
        return scores

"""`RewardEnsemble`: k reward models as one torch module, answering both ways a reward model is read here: its
forward (`.logits`, each member's own sequence-classification score, aggregated) and TRL's PPO `get_reward`
(the backbone named by `base_model_prefix`, then `score`, at every position)."""

from types import SimpleNamespace

import torch


def aggregate(scores, rule: str, penalty: float = 0.0):
    """One score from each row of members' scores (a tensor, members in the last dimension): their mean, their
    minimum (the worst case), mean - penalty * variance (uncertainty-weighted; the variance over members, not
    corrected for sample size, so that one member has none), or member 0's (single)."""
    if rule == "mean":
        return scores.mean(-1)
    if rule == "min":
        return scores.min(-1).values
    if rule == "uncertainty":
        return scores.mean(-1) - penalty * scores.var(-1, correction=0)
    if rule == "single":
        return scores[..., 0]
    raise ValueError(f"unknown aggregate {rule!r}")


class MemberScores(torch.nn.Module):
    """TRL's get_reward reads `getattr(model, model.base_model_prefix)(...).hidden_states[-1]` and hands it to
    `model.score`; here that "hidden state" is every member's score at every position (members last)."""

    def __init__(self, members, scales: list[float], shifts: list[float]):
        super().__init__()
        self.models = torch.nn.ModuleList(members)
        self.register_buffer("scales", torch.tensor(scales, dtype=torch.float32), persistent=False)
        self.register_buffer("shifts", torch.tensor(shifts, dtype=torch.float32), persistent=False)

    def mapped(self, scores):
        """Members' raw scores (members last) onto member 0's scale."""
        return scores.float() * self.scales + self.shifts

    def forward(self, input_ids, attention_mask=None, position_ids=None, **kwargs):
        per_member = []
        for model in self.models:
            hidden = getattr(model, model.base_model_prefix)(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                return_dict=True,
                output_hidden_states=True,
                use_cache=False,
            ).hidden_states[-1]
            per_member.append(model.score(hidden).squeeze(-1))
        return SimpleNamespace(hidden_states=(self.mapped(torch.stack(per_member, -1)),))


class Aggregation(torch.nn.Module):
    """Members' scores (members last) -> the aggregate, with a trailing dimension of 1 as a score head's."""

    def __init__(self, rule: str, penalty: float):
        super().__init__()
        self.rule, self.penalty = rule, penalty

    def forward(self, scores):
        return aggregate(scores, self.rule, self.penalty).unsqueeze(-1)


class RewardEnsemble(torch.nn.Module):
    """k reward models read as their aggregate; `members` and `score` serve TRL's get_reward."""

    base_model_prefix = "members"

    def __init__(self, members, scales: list[float], shifts: list[float], rule: str, penalty: float):
        super().__init__()
        self.members = MemberScores(members, scales, shifts)
        self.score = Aggregation(rule, penalty)
        self.config = members[0].config

    def member_scores(self, input_ids, attention_mask=None, **kwargs):
        """(batch, members): each member's score of each sequence, on member 0's scale."""
        raw = [
            model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits[:, 0]
            for model in self.members.models
        ]
        return self.members.mapped(torch.stack(raw, -1))

    def forward(self, input_ids, attention_mask=None, **kwargs):
        return SimpleNamespace(logits=self.score(self.member_scores(input_ids, attention_mask, **kwargs)))

"""Regenerate the sentiment prompt set: ``python data/sentiment/generate.py``.

320 distinct one-sentence writing prompts about 80 everyday situations, from pleasant to
annoying, so that an instruction-tuned model's answers spread over the sentiment scale and
preference tuning has room to move them. Each row names its topic; recipes split by topic
(prompts.group_field: topic) so that no held-out topic is trained on in other words.
Written for rlhf-recipes; no license restrictions.
"""

import json
from pathlib import Path

TEMPLATES = [
    "Write one sentence about {}.",
    "Describe {} in a single sentence.",
    "In one sentence, say how you feel about {}.",
    "Give a one-sentence review of {}.",
]
TOPICS = [
    "a rainy Monday morning",
    "waiting in line at the post office",
    "a long flight next to a crying baby",
    "the last day of summer vacation",
    "a burnt piece of toast",
    "a traffic jam on the highway",
    "the first day at a new job",
    "a thunderstorm at night",
    "a cancelled concert",
    "a cold cup of coffee",
    "moving to a new city",
    "a crowded train at rush hour",
    "losing your keys",
    "a surprise birthday party",
    "the smell of fresh bread",
    "a broken umbrella",
    "a slow internet connection",
    "a visit to the dentist",
    "an empty fridge",
    "a quiet Sunday afternoon",
    "a parking ticket",
    "a job interview",
    "an old photograph",
    "a flat tire",
    "a noisy neighbor",
    "the end of a good book",
    "a hospital waiting room",
    "a snow day",
    "a group project",
    "a power outage",
    "a delayed train",
    "a homework deadline",
    "a long meeting",
    "new shoes that hurt",
    "a lost package",
    "a hike in the mountains",
    "a failed exam",
    "a rainy vacation",
    "a stubborn cold",
    "a garden in spring",
    "a wedding",
    "a dog that barks all night",
    "a messy kitchen",
    "a holiday spent alone",
    "an unexpected bill",
    "an early alarm clock",
    "a sunset at the beach",
    "a blank page",
    "a spilled glass of juice",
    "filling in a tax form",
    "an airport security line",
    "a lukewarm shower",
    "a second-hand bicycle",
    "a crowded supermarket",
    "a difficult phone call",
    "a missed bus",
    "the first snow of winter",
    "a stale sandwich",
    "a leaky roof",
    "a long queue at the bank",
    "a hot night without air conditioning",
    "a cancelled flight",
    "a boring lecture",
    "meeting an old friend after many years",
    "a small apartment",
    "a cracked phone screen",
    "a noisy restaurant",
    "a surprise quiz",
    "a picnic ruined by rain",
    "a foggy morning",
    "a quiet library",
    "a week in hospital",
    "a sad movie",
    "a crowded beach",
    "a busy city street",
    "an overdue library book",
    "a slow waiter",
    "a new neighbor",
    "a software update that breaks everything",
    "the last slice of cake",
]


def main() -> None:
    rows = [{"prompt": template.format(topic), "topic": topic} for topic in TOPICS for template in TEMPLATES]
    assert len({row["prompt"] for row in rows}) == len(rows) == 320
    with open(Path(__file__).parent / "prompts.jsonl", "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

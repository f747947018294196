"""Regenerate the smoke task's shipped data: ``python data/smoke/generate.py``.

The smoke recipe needs a tiny policy that writes short reviews of mixed sentiment,
so that preference tuning has room to move it. Everything here is template text,
so the files are small, license-free and identical on every machine.

Writes, next to this script:
  prompts.txt           one review opening per line (the prompts to tune on and evaluate)
  demonstrations.jsonl  {"prompt", "completion"} pairs for the SFT warm start; their
                        openings are disjoint from prompts.txt, so no held-out prompt is
                        ever trained on.
  pairs.jsonl           {"prompt", "chosen", "rejected"}: four pairs of endings of each
                        prompt in prompts.txt, the one with more positive than negative
                        words chosen, and 10% of the pairs the other way round (an
                        annotator's slips): "your own pairs" for recipes/smoke_own_pairs.yaml.
"""

import itertools
import json
import random
from pathlib import Path

ITEMS = [
    "the pasta",
    "the soup",
    "the coffee",
    "the pizza",
    "the salad",
    "the burger",
    "the cake",
    "the bread",
    "the curry",
    "the tea",
    "the new phone",
    "the laptop",
    "the headphones",
    "the camera",
    "the speaker",
    "the keyboard",
    "the hotel room",
    "the bed",
    "the pool",
    "the movie",
    "the show",
    "the book",
    "the album",
    "the concert",
    "the game",
    "the museum",
    "the park",
    "the train ride",
    "the flight",
    "the bike",
    "the car",
    "the jacket",
    "the shoes",
    "the watch",
    "the lamp",
    "the sofa",
    "the garden",
    "the class",
    "the tour",
    "the app",
]
CONTEXTS = [
    "at the corner cafe",
    "from the market",
    "in the city",
    "we got last week",
    "from the shop",
    "at the old hotel",
    "near the station",
    "on our trip",
    "my friend bought",
    "at the festival",
    "from the new store",
    "in the small town",
    "we tried on sunday",
    "at the mall",
    "for my birthday",
]
ASPECTS = ["service", "staff", "price", "view", "sound", "screen", "ending", "music", "room", "food"]
POSITIVE = [
    "great",
    "wonderful",
    "excellent",
    "lovely",
    "amazing",
    "good",
    "nice",
    "fantastic",
    "delightful",
    "superb",
    "pleasant",
    "perfect",
    "beautiful",
    "fun",
]
NEGATIVE = [
    "terrible",
    "awful",
    "bad",
    "horrible",
    "disappointing",
    "poor",
    "dreadful",
    "boring",
    "ugly",
    "broken",
    "rude",
    "sad",
    "dirty",
    "annoying",
]
NEUTRAL = ["small", "quiet", "new", "old", "expensive", "ordinary", "brown", "long", "short", "plain"]
INTENSIFIERS = ["", "", "", "very ", "really ", "quite ", "so ", "a bit ", "not "]
VERBS = ["was", "felt", "seemed", "looked", "was really"]


def adjective(rng: random.Random) -> str:
    pool = rng.choice([POSITIVE, NEGATIVE, NEUTRAL])
    return rng.choice(INTENSIFIERS) + rng.choice(pool)


def completion(rng: random.Random) -> str:
    """One short review ending, with a leading space (the prompt has none at its end)."""
    verb = rng.choice(VERBS)
    shape = rng.randrange(4)
    if shape == 0:
        text = f"{verb} {adjective(rng)} ."
    elif shape == 1:
        text = f"{verb} {adjective(rng)} and the {rng.choice(ASPECTS)} was {adjective(rng)} ."
    elif shape == 2:
        text = f"{verb} {adjective(rng)} but the {rng.choice(ASPECTS)} was {adjective(rng)} ."
    else:
        text = f"{verb} {adjective(rng)} , {adjective(rng)} and {adjective(rng)} ."
    return " " + text


def main() -> None:
    rng = random.Random(0)
    openings = [f"{item} {context}" for item, context in itertools.product(ITEMS, CONTEXTS)]
    rng.shuffle(openings)
    prompts, demo_openings = openings[:360], openings[360:]
    here = Path(__file__).parent
    (here / "prompts.txt").write_text("\n".join(sorted(prompts)) + "\n", encoding="utf-8")
    with open(here / "demonstrations.jsonl", "w", encoding="utf-8") as out:
        for opening in demo_openings:
            for _ in range(16):
                out.write(json.dumps({"prompt": opening, "completion": completion(rng)}) + "\n")
    write_pairs(sorted(prompts), here / "pairs.jsonl")


def tone(text: str) -> int:
    """Positive words minus negative words, a "not" turning the next word round."""
    words, total = text.split(), 0
    for index, word in enumerate(words):
        sign = -1 if index > 0 and words[index - 1] == "not" else 1
        total += sign * ((word in POSITIVE) - (word in NEGATIVE))
    return total


def write_pairs(prompts: list[str], out: Path) -> None:
    """Four labeled pairs per prompt (pairs of equal tone are drawn again); its own random stream, so the
    other files do not change."""
    rng = random.Random(1)
    with open(out, "w", encoding="utf-8") as handle:
        for prompt in [prompt for prompt in prompts for _ in range(4)]:
            first, second = completion(rng), completion(rng)
            while tone(first) == tone(second):
                second = completion(rng)
            chosen, rejected = (first, second) if tone(first) > tone(second) else (second, first)
            if rng.random() < 0.1:
                chosen, rejected = rejected, chosen
            handle.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")


if __name__ == "__main__":
    main()

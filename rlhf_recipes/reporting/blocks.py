"""What every report is made of: numbers and intervals as text, the sections every run's report has (time,
samples, the judge's agreement), rendering to markdown and HTML, and publishing a report whole."""

import base64
import html
import re
from pathlib import Path

from ..runtime.files import write_atomically


def number(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def interval(values) -> str:
    return f"[{number(values[0])}, {number(values[1])}]"


def time_blocks(metrics: dict) -> list[tuple]:
    """Each stage's wall time when it was built, and their sum."""
    seconds = metrics["stage_seconds"]
    return [
        ("h2", "Time per stage"),
        (
            "table",
            ["stage", "seconds"],
            [[stage, number(value, 1)] for stage, value in seconds.items()]
            + [["total", number(sum(seconds.values()), 1)]],
        ),
    ]


def signed_interval(entry: dict) -> str:
    """+0.123 [+0.045, +0.201] from an Interval's dict."""
    if entry["low"] is None:
        return f"{entry['mean']:+.3f} [n/a]"
    return f"{entry['mean']:+.3f} [{entry['low']:+.3f}, {entry['high']:+.3f}]"


def judge_sentence(prefs: dict) -> str:
    """What the judge labeler did: questions, self-contradictions (ties), agreement with gold where there is one."""
    agreement = prefs["judge_agreement_with_gold"]
    return (
        f"The judge was asked {prefs['judge_questions']} questions about train pairs (each pair in both "
        "orders); it contradicted itself across the two orders on "
        f"{number(prefs['judge_inconsistent_fraction'])} of the pairs (ties, dropped). "
        + (
            f"Where it decided and gold scores differ, it agreed with gold on {number(agreement)} of "
            f"{prefs['judge_agreement_pairs']} pairs."
            if agreement is not None
            else "Its agreement with gold is not measured: no pair it decided has two gold scores that differ."
        )
    )


def sample_blocks(generations: list[dict], examples: int) -> list[tuple]:
    by_policy: dict[str, list[dict]] = {}
    for row in generations:
        by_policy.setdefault(row["policy"], []).append(row)
    blocks: list[tuple] = [("h2", "Samples")] if examples else []
    step = max(1, len(by_policy["reference"]) // max(examples, 1))
    for index in list(range(0, step * examples, step))[:examples]:
        blocks.append(("p", f"**Prompt:** {by_policy['reference'][index]['prompt']}"))
        blocks.append(
            (
                "list",
                [
                    f"{name} ("
                    + (f"gold {number(rows[index]['gold'], 2)}, " if rows[index]["gold"] is not None else "")
                    + f"learned reward {number(rows[index]['reward_model'], 2)}): {rows[index]['response'].strip()!r}"
                    for name, rows in by_policy.items()
                ],
            )
        )
    return blocks


def render_markdown(blocks: list[tuple], plots_dir: str = "plots") -> str:
    lines = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            lines += [f"# {block[1]}", ""]
        elif kind == "h2":
            lines += [f"## {block[1]}", ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "list":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            lines += ["| " + " | ".join(block[1]) + " |", "|" + "---|" * len(block[1])]
            lines += ["| " + " | ".join(row) + " |" for row in block[2]] + [""]
        elif kind == "image":
            lines += [f"![{block[2]}]({plots_dir}/{block[1]})", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def render_html(blocks: list[tuple], plots_dir: Path) -> str:
    """One HTML file with the plots embedded as data URIs, readable offline and attachable anywhere."""
    title = next((block[1] for block in blocks if block[0] == "h1"), "rlhf-recipes report")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}"
        "img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:0.9em}</style></head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            parts.append(f"<{kind}>{_inline(block[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block[1]) + "</ul>")
        elif kind == "table":
            header = "".join(f"<th>{_inline(cell)}</th>" for cell in block[1])
            body = "".join("<tr>" + "".join(f"<td>{_inline(cell)}</td>" for cell in row) + "</tr>" for row in block[2])
            parts.append(f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "image":
            data = base64.b64encode((plots_dir / block[1]).read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img alt="{html.escape(block[2])}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(block[2])}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def publish(directory: Path, metrics: dict, blocks: list[tuple], plots: Path) -> None:
    """Render metrics.json, report.md and report.html (its images from `plots`, where they were drawn), then
    move `plots` to directory/plots and write the three files, each atomically."""
    import json
    import os
    import shutil

    texts = {
        "metrics.json": json.dumps(metrics, indent=2) + "\n",
        "report.md": render_markdown(blocks),
        "report.html": render_html(blocks, plots),
    }
    shutil.rmtree(directory / "plots", ignore_errors=True)
    os.replace(plots, directory / "plots")
    for name, text in texts.items():
        write_atomically(directory / name, text)


def training_seed_text(metrics: dict) -> str:
    """ ", training seed 3" when training had a seed of its own; "" otherwise (and in runs made before the key)."""
    seed = metrics.get("training_seed")
    return "" if seed is None else f", training seed {seed}"


def ensemble_items(ensemble: dict, members: list[float], accuracy: float, judge: str) -> list[str]:
    """What a report says of a reward-model ensemble: its rule, each member's held-out accuracy against `judge`
    (`members`) beside the ensemble's (`accuracy`), and how much the members disagree."""
    rule = ensemble["aggregate"] + (f" (penalty λ = {number(ensemble['penalty'], 2)})" if ensemble["penalty"] else "")
    return [
        f"An ensemble of {len(members)} reward models read as their **{rule}**"
        + (", members 1 onward on bootstrap resamples of the pairs" if ensemble["bootstrap"] else "")
        + f"; the accuracies above are the ensemble's. Each member's held-out accuracy against {judge}: "
        + ", ".join(number(a) for a in members)
        + f" (best {number(max(members))}; the ensemble {number(accuracy)})",
        f"The members order {number(ensemble['pairs_all_members_agree'])} of the held-out pairs alike; a held-out "
        f"response's score varies across members by {number(ensemble['member_sd_mean'])} (mean SD, on member 0's "
        f"scale) against a spread of {number(ensemble['score_sd'])} (SD) of the aggregate over responses",
    ]

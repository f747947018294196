"""Every message is printed as written: one console (rlhf_recipes/console.py) that never parses markup, and
no markup in the code. A path, a value or a regex with square brackets would otherwise lose them
(`nope[/b].txt` raised MarkupError; `exp[v2]/` printed as `exp/`). The behaviour itself is checked by
docs/bad-input.md's markup-in-path, brackets-in-path, variant-name-rule and help-defaults rows."""

import re

from rlhf_recipes.console import make_console, styled

from .helpers import REPO

MARKUP = re.compile(
    r"\[/?(?:bold|dim|italic|red|green|yellow|blue|cyan|magenta|white|link|progress\.[a-z_]+)\b[^\]]*\]"
)


def sources():
    return [path for path in (REPO / "rlhf_recipes").rglob("*.py") if path.name != "console.py"]


def test_no_module_but_console_makes_a_console_or_writes_markup():
    makers = [str(path) for path in sources() if re.search(r"\bConsole\(", path.read_text())]
    assert not makers, f"make consoles with rlhf_recipes.console.make_console: {makers}"
    markup = [f"{path}: {m.group(0)}" for path in sources() for m in MARKUP.finditer(path.read_text())]
    assert not markup, f"colour with console.styled, not markup: {markup}"


def test_the_console_prints_brackets_as_written(capsys):
    console = make_console(force_terminal=False, width=200)
    console.print(styled("error:", "red"), "prompts.path: '/tmp/x/nope[/b].txt' and exp[v2]/ [bold]x[/bold]")
    assert "error: prompts.path: '/tmp/x/nope[/b].txt' and exp[v2]/ [bold]x[/bold]" in capsys.readouterr().err

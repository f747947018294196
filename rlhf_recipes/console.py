"""The one way the tool prints: a rich console that never parses markup, so a path, a value, a regex or a
message with square brackets is printed as written (`nope[/b].txt`, `exp[v2]`). Colour comes from
`styled` pieces, never from markup in a string; tests/test_console.py checks that no other module makes a
Console or writes markup."""

from rich.console import Console
from rich.text import Text


def make_console(**options) -> Console:
    """A console on stderr that prints text as text (no markup, no highlighting)."""
    return Console(stderr=True, soft_wrap=True, markup=False, highlight=False, **options)


def styled(text: str, style: str) -> Text:
    """`text` in `style` ("red", "bold", ...), to print beside plain strings: console.print(styled(...), rest)."""
    return Text(text, style=style)

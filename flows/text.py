"""Text helpers shared by the loader and the runner: trigger normalization and templates."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping

#: ``{{`` and ``}}`` are literal braces; ``{name}`` is a flow variable.
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.lru_cache(maxsize=1024)
def normalize(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form: ``"Olá!!"`` -> ``"ola"``.

    Punctuation, symbols (emoji too) and runs of spaces become one space, so
    ``"/start"`` -> ``"start"`` and ``"Bom   dia."`` -> ``"bom dia"``.

    Remembered for the last 1,024 texts (issue 18): a turn reads its customer's text
    here twice (flow triggers, a flow's options) and every option label on each reply.
    """
    kept: list[str] = []
    for char in unicodedata.normalize("NFKD", text.casefold()):
        category = unicodedata.category(char)
        if category == "Mn":  # the accent split off by NFKD
            continue
        kept.append(" " if category[0] in "PSZC" else char)
    return " ".join("".join(kept).split())


def render(template: str, variables: Mapping[str, str]) -> str:
    """Fill ``{name}`` from ``variables`` (missing -> empty). Never raises, never evaluates."""

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return variables.get(match.group(1), "")

    return _TOKEN.sub(fill, template)


def template_problem(template: str) -> str | None:
    """Why ``template`` is not a valid template, or None. Checked at load time."""
    rest = _TOKEN.sub("", template)
    if "{" in rest or "}" in rest:
        return (
            "a lone '{' or '}': write {name} for a variable (letters, digits, _), "
            "{{ or }} for a literal brace"
        )
    return None

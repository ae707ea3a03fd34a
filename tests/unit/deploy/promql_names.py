"""A small, conservative extractor of metric names and label matchers from PromQL.

Not a parser: PromQL's lexical shape is regular enough that, after removing string literals,
label matchers (``{...}``), ranges/subqueries (``[...]``), grouping clauses (``by (...)``, ``on
(...)``...) and Grafana variables, every identifier left is a function (followed by ``(``), a
keyword, or a metric name. Regexes with ``}`` inside a matcher value are not supported (the
project uses none); the extractor's own tests pin the cases it must get right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KEYWORDS", "Selector", "metric_names", "selectors"]

#: Non-function words of the PromQL grammar (operators and modifiers), lower case.
KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
        "atan2",
    }
)

_IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
_SELECTOR = re.compile(rf"({_IDENT})?\s*\{{([^}}]*)\}}")
_MATCHER = re.compile(rf"\s*({_IDENT})\s*(=~|!~|!=|=)\s*({_STRING})\s*,?")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+")
_TOKEN = re.compile(rf"\d[\w.]*|{_IDENT}")


@dataclass(frozen=True)
class Selector:
    """One ``name{label op "value", ...}``; ``name`` is "" for a bare ``{...}``."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, unquoted value)


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return body if literal[0] == "`" else re.sub(r"\\(.)", r"\1", body)


def selectors(expr: str) -> list[Selector]:
    """Every ``{...}`` selector in ``expr`` with its (optional) metric name and matchers.

    Raises ValueError on a matcher list it cannot read, so a typo fails loudly rather than
    slipping past the checks.
    """
    found: list[Selector] = []
    for m in _SELECTOR.finditer(expr):
        body = m.group(2)
        matchers: list[tuple[str, str, str]] = []
        pos = 0
        while pos < len(body) and body[pos:].strip():
            mm = _MATCHER.match(body, pos)
            if mm is None:
                raise ValueError(f"cannot read label matchers {{{body}}} in {expr!r}")
            matchers.append((mm.group(1), mm.group(2), _unquote(mm.group(3))))
            pos = mm.end()
        found.append(Selector(m.group(1) or "", tuple(matchers)))
    return found


def metric_names(expr: str) -> set[str]:
    """Every metric (or recording-rule) name ``expr`` selects, bare or with ``{...}``/``[...]``."""
    names = {s.name for s in selectors(expr) if s.name}
    rest = re.sub(_STRING, " ", _SELECTOR.sub(lambda m: f" {m.group(1) or ''} ", expr))
    rest = re.sub(r"\[[^\]]*\]", " ", rest)
    rest = _GROUPING.sub(" ", rest)
    rest = _GRAFANA_VAR.sub(" ", rest)
    for tok in _TOKEN.finditer(rest):
        word = tok.group(0)
        if word[0].isdigit() or word.lower() in KEYWORDS:
            continue
        if re.match(r"\s*\(", rest[tok.end() :]):
            continue  # a function or aggregation call
        names.add(word)
    return names

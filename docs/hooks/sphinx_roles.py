"""MkDocs hook: show the docstrings' Sphinx roles as plain code in the rendered site.

The package's docstrings cross-reference with Sphinx roles (``:func:`lstm_jax.probes.probe```),
which mkdocstrings' Google-style parser leaves as text, so the API pages read
":func:<code>lstm_jax.probes.probe</code>". This drops the role and, as Sphinx does for a
``~``-prefixed target, shows only the last name.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|obj|exc|const|term|ref):"
                   r"<code>(~?)([^<]*)</code>")


def _plain(match: re.Match) -> str:
    short, target = match.group(1), match.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if short else target}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(_plain, html)

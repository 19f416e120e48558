"""The documentation: the MkDocs site builds in strict mode (a broken link, a missing page or an
API reference to a name that does not exist fails), and the README stays a short front page
whose links resolve."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mkdocs_strict_build(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    # no -q: mkdocs --quiet drops warnings before --strict counts them (a broken link passed)
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = tmp_path / "site"
    for page in ("index.html", "concepts/index.html", "api/probes/index.html",
                 "api/compare/index.html", "api/cells/index.html",
                 "findings/cell-path/index.html", "tutorials/gradient_flow/index.html"):
        assert (site / page).is_file(), page
    probes = (site / "api" / "probes" / "index.html").read_text()
    assert "jacobian_norms" in probes and "geometric" in probes
    assert "arithmatex" in (site / "concepts" / "index.html").read_text()
    raw_roles = [str(f.relative_to(site)) for f in site.rglob("*.html")
                 if re.search(r":(func|class|mod|meth|attr):<code>", f.read_text())]
    assert not raw_roles, f"Sphinx roles shown raw in {raw_roles}"


def test_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), "no dates in the README"
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert len(links) >= 10
    for link in links:
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link
    for command in ("make demo", "make test", "pip install -e '.[cuda13]'", "'.[tpu]'"):
        assert command in text


def test_citation_and_licence_files():
    cff = (ROOT / "CITATION.cff").read_text()
    assert cff.startswith("cff-version: 1.2.0") and "Apache-2.0" in cff
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f'version: "{version}"' in cff or f"version: {version}" in cff
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]


def test_readme_python_quickstart_prints_what_the_readme_says(tmp_path):
    """The README's Python quickstart runs as printed, and its output is the one the README
    quotes under it (``rnn … -19.4`` etc.), so the front page cannot drift from the code."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Quickstart: Python\s+```python\n(.*?)```", text, re.S).group(1)
    quoted = dict(re.findall(r"`(\w+) … (-?\d+\.\d)`", text.split("## Quickstart: Python")[1]
                             .split("## Quickstart: command line")[0]))
    assert set(quoted) == {"rnn", "lstm", "gru"}
    (tmp_path / "quickstart.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(tmp_path / "quickstart.py")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    printed = {line.split()[0]: line.split()[-1] for line in proc.stdout.splitlines()}
    assert printed == quoted, (printed, quoted)


def test_getting_started_example_runs_and_agrees_with_the_readme(tmp_path):
    """docs/getting-started.md's first example runs as printed; it probes the same LSTM on the same
    input as the README's quickstart, so its ‖∂h_T/∂h_{T−100}‖ is the README's quoted ``lstm`` value,
    and its cell-path numbers are finite log10 norms."""
    text = (ROOT / "docs" / "getting-started.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    readme = (ROOT / "README.md").read_text()
    lstm_quoted = float(re.search(r"`lstm … (-?\d+\.\d)`", readme).group(1))
    (tmp_path / "getting_started.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(tmp_path / "getting_started.py")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    hidden, cell, cec = (float(v) for v in proc.stdout.split())
    assert round(hidden, 1) == lstm_quoted
    assert all(math.isfinite(v) and v < 0 for v in (cell, cec))

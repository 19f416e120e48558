"""The report's document model: a list of blocks and its two renderings.

A block is a tuple: ``("h", level, text)``, ``("p", text)``, ``("table", markdown)``,
``("code", text)``, ``("list", items)``, ``("details", summary, text)``, ``("fig", path, caption)``.
:func:`render_markdown` links figures by relative path (copied beside the Markdown);
:func:`render_html` makes one standalone page with the figures embedded as base64 PNG.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
from pathlib import Path


def heading(level, text):
    return ("h", level, text)


def para(text):
    return ("p", text)


def table_block(md: str):
    return ("table", md.strip())


def figure(path: Path, caption: str):
    return ("fig", Path(path), caption)


def code_block(text: str):
    return ("code", text)


def bullets(items):
    return ("list", list(items))

def render_markdown(blocks: list, out: Path) -> str:
    """Markdown with figures copied to ``out/figures`` and linked relatively."""
    figs = out / "figures"
    lines = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            lines += ["#" * b[1] + " " + b[2], ""]
        elif kind == "p":
            lines += [b[1], ""]
        elif kind == "table":
            lines += [b[1], ""]
        elif kind == "code":
            lines += ["```", b[1], "```", ""]
        elif kind == "list":
            lines += [f"- {x}" for x in b[1]] + [""]
        elif kind == "details":
            lines += [f"<details><summary>{b[1]}</summary>", "", "```json", b[2], "```",
                      "", "</details>", ""]
        elif kind == "fig":
            path, cap = b[1], b[2]
            if path.is_file():
                figs.mkdir(parents=True, exist_ok=True)
                name = f"{path.parent.name}_{path.name}"
                shutil.copyfile(path, figs / name)
                lines += [f"![{cap}](figures/{name})", "", f"*{cap}* (`{path}`)", ""]
            else:
                lines += [f"*Figure missing: {path}*", ""]
    return "\n".join(lines)


def _md_table_html(md: str) -> str:
    rows = [r.strip() for r in md.strip().splitlines() if r.strip().startswith("|")]
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    if len(cells) >= 2 and all(set(c) <= set("-: ") for c in cells[1]):
        head, body = cells[0], cells[2:]
    else:
        head, body = None, cells
    h = "<table>"
    if head:
        h += "<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
    for r in body:
        h += "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>"
    return h + "</table>"


def _inline(text: str) -> str:
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def render_html(blocks: list) -> str:
    """One standalone page; figures embedded as base64 PNG."""
    body = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            body.append(f"<h{b[1]}>{html.escape(b[2])}</h{b[1]}>")
        elif kind == "p":
            body.append(f"<p>{_inline(b[1])}</p>")
        elif kind == "table":
            body.append(_md_table_html(b[1]))
        elif kind == "code":
            body.append(f"<pre>{html.escape(b[1])}</pre>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in b[1]) + "</ul>")
        elif kind == "details":
            body.append(f"<details><summary>{html.escape(b[1])}</summary><pre>"
                        f"{html.escape(b[2])}</pre></details>")
        elif kind == "fig":
            path, cap = b[1], b[2]
            if path.is_file():
                data = base64.b64encode(path.read_bytes()).decode()
                body.append(f'<figure><img src="data:image/png;base64,{data}" alt="'
                            f'{html.escape(cap)}"><figcaption>{html.escape(cap)} '
                            f"(<code>{html.escape(str(path))}</code>)</figcaption></figure>")
            else:
                body.append(f"<p><em>Figure missing: {html.escape(str(path))}</em></p>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}"
             "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}"
             "img{max-width:100%}pre{background:#f5f5f5;padding:0.5em;overflow-x:auto;"
             "font-size:0.8em}figure{margin:1em 0}")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>lstm_jax report</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------ commands and configurations shown with a section


def _cmd(manifest: dict, stage: str, fallback: str) -> str:
    s = (manifest or {}).get("stages", {}).get(stage)
    if not s:
        return fallback
    extra = ""
    if "seconds" in s:
        extra = (f"   # {s['seconds']:.0f} s, exit {s['returncode']}, load "
                 f"{s['load_before']}→{s['load_after']}, {s.get('finished', '')}")
    elif "skipped" in s:
        extra = f"   # skipped: {s['skipped']}"
    return s["command"] + extra


def _cmd_for(manifest: dict, stage: str, folder: Path, fallback: str) -> str:
    """:func:`_cmd` when the manifest's command for ``stage`` names ``folder``, else
    ``fallback``: a section never shows the command of another folder than the one it read."""
    s = (manifest or {}).get("stages", {}).get(stage)
    if s and _names_folder(s["command"], folder):
        return _cmd(manifest, stage, fallback)
    return fallback


def _names_folder(command: str, folder: Path) -> bool:
    """Whether one of ``command``'s arguments is ``folder`` (compared as resolved paths)."""
    import shlex

    try:
        args = shlex.split(command)
    except ValueError:
        return False
    want = Path(folder).resolve()
    return any(Path(a).resolve() == want for a in args)


def _config_block(cfg: dict) -> tuple:
    return ("details", "configuration", json.dumps(cfg, indent=1, sort_keys=True, default=str))

"""HTML pieces shared by the run report and the index: escaping, tables, badges, one stylesheet.

Pages are plain HTML with the stylesheet inline and no script, so a report opens offline,
from a file: URL or an archived CI artifact, and there is nothing in it that can fail to load.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from harness.report import model

#: how each status reads, and its CSS class: deviated (the system failed) and the undecided
#: kinds never share a colour
WORDS: dict[model.Status, str] = {
    "valid": "valid", "deviated": "INVALID", "unknown": "unknown", "errored": "unknown (checker crashed)",
    "incomplete": "incomplete",
}

CSS = """
:root { --ok:#1e7b3c; --bad:#b3261e; --unk:#8a5a00; --err:#6d4c9f; --inc:#5f6368; --line:#e2e2e2; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#1f1f1f;
       margin: 0 auto; max-width: 1320px; padding: 18px 24px 60px; }
h1 { font-size: 22px; margin: 4px 0; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line);
     padding-bottom: 4px; } h3 { font-size: 14px; margin: 14px 0 6px; }
.sub, .caption, .muted { color: #5f6368; } .caption { font-size: 12px; }
nav a { margin-right: 12px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px 4px 0; text-align: left; vertical-align: top; }
th { font-weight: 600; color: #444; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 2px solid #ccc; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px;
         color: #fff; vertical-align: middle; }
.st-valid { background: var(--ok); } .st-deviated { background: var(--bad); } .st-unknown { background: var(--unk); }
.st-errored { background: var(--err); } .st-incomplete { background: var(--inc); }
.group { border-left: 4px solid var(--line); padding: 2px 0 2px 12px; margin: 10px 0; }
.group.deviated { border-color: var(--bad); } .group.undecided { border-color: var(--unk); }
.group.passed { border-color: var(--ok); }
.banner { padding: 10px 14px; border-radius: 6px; margin: 10px 0; }
.banner.incomplete { background: #f1f3f4; border: 1px solid #c8c8c8; }
.banner.problems { background: #fff8e1; border: 1px solid #f0d58c; }
.bad { color: var(--bad); font-weight: 600; } .warn { color: var(--unk); } .good { color: var(--ok); }
pre, code { font: 12px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
pre { background: #f6f8fa; padding: 8px 10px; border-radius: 6px; overflow-x: auto; }
details > summary { cursor: pointer; color: #333; }
figure { margin: 8px 0; } svg.timeline { max-width: 100%; }
svg.trend { width: 100%; height: auto; }
table.kv { min-width: 60%; } .kv th { width: 170px; }
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def badge(status: model.Status) -> str:
    return f'<span class="badge st-{status}" data-status="{status}">{esc(WORDS[status])}</span>'


def seconds(value: float | None, *, none: str = "-") -> str:
    return none if value is None else f"{value:.3f}"


def number(value: int | float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def size(n: int | None) -> str:
    if n is None:
        return ""
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "", numeric: Iterable[int] = (),
          row_classes: Sequence[str] | None = None, row_ids: Sequence[str] | None = None) -> str:
    """A table; cells are HTML already (escape with :func:`esc`), ``numeric`` columns right-aligned."""
    nums = set(numeric)
    head = "".join(f'<th{" class=num" if i in nums else ""}>{esc(h)}</th>' for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        attrs = ""
        if row_classes is not None and row_classes[r]:
            attrs += f' class="{row_classes[r]}"'
        if row_ids is not None:
            attrs += f' id="{row_ids[r]}"'
        cells = "".join(f'<td{" class=num" if i in nums else ""}>{c}</td>' for i, c in enumerate(row))
        body.append(f"<tr{attrs}>{cells}</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")

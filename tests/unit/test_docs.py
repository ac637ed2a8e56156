"""The project documents itself: no pointer leaves the repository, and every relative link resolves.

The design notes the project grew from lived outside the repository, so a clone could not follow
a reference to them; their content is now in ``docs/``. These tests keep it that way: no file git
tracks (or would track: new files count too) points at the old notes, and every relative link in
README.md and docs/*.md names a file of the repository (and, for a Markdown file with a
``#fragment``, one of its headings).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: A pointer to the old notes outside the repository. Spelled with escapes so this file, which
#: git tracks too, does not match itself.
OUTSIDE = re.compile(rb"\.\./shared|shared/(?:design|durability|sim-spec|anchors|libraries)\.md")

#: ``[text](target)`` and ``![alt](target)``, with an optional title after the target.
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def _repo_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    done = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True, timeout=60,
    )
    return sorted({name for name in done.stdout.decode().split("\0") if name})


def _documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _links(doc: Path) -> list[str]:
    text = FENCE.sub("", doc.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # a link inside inline code is an example, not a link
    return LINK.findall(text)


def test_no_file_outside_docs_points_at_the_notes_outside_the_repository() -> None:
    offenders = []
    for name in _repo_files():
        if name.startswith("docs/"):
            continue
        path = REPO / name
        if not path.is_file():
            continue  # deleted in the working tree, or a submodule
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{name}:{number}: {line.decode(errors='replace').strip()[:120]}")
    assert not offenders, "pointers to notes outside the repository (use docs/ instead):\n" + "\n".join(offenders)


def test_the_documents_exist() -> None:
    names = {p.name for p in _documents()}
    assert {"README.md", "design.md", "durability.md", "kubesim.md", "alternatives.md"} <= names


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_at_a_file_of_the_repository(doc: Path) -> None:
    broken = []
    for target in _links(doc):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # https:, mailto: … — not a file of ours
        path_part, _, fragment = target.partition("#")
        resolved = (doc.parent / path_part).resolve() if path_part else doc.resolve()
        if not resolved.is_relative_to(REPO):
            broken.append(f"{target}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md":
            anchors = {_slug(h) for h in HEADING.findall(FENCE.sub("", resolved.read_text(encoding="utf-8")))}
            if fragment not in anchors:
                broken.append(f"{target}: no heading #{fragment} in {resolved.relative_to(REPO)}")
    assert not broken, f"{doc.relative_to(REPO)} has broken links:\n" + "\n".join(broken)

"""`harness deploy --render DIR`: the objects as YAML files, one per object, in creation order.

The files are what `kubectl apply -f DIR` would need to reproduce a harness deployment by hand,
and what a reviewer reads to see exactly what every cluster gets.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from harness.deploy import manifests


class RenderError(Exception):
    """The target directory cannot take the files; nothing was overwritten."""


def file_name(index: int, obj: manifests.KubeObject) -> str:
    kind = re.sub(r"(?<!^)(?=[A-Z])", "-", obj.kind).lower()
    return f"{index:02d}-{kind}-{obj.name}.yaml"


def to_yaml(obj: manifests.KubeObject) -> str:
    return yaml.safe_dump(obj.body, sort_keys=False, default_flow_style=False)


def render(built: manifests.Manifests, directory: Path, *, overwrite: bool = False) -> list[Path]:
    """Write one YAML per object; refuses to replace existing files unless ``overwrite``."""
    if directory.exists() and not directory.is_dir():
        raise RenderError(f"--render {directory} is a file, not a directory; pass a directory path")
    planned = [(directory / file_name(index, obj), obj) for index, obj in enumerate(built)]
    clashes = [path.name for path, _ in planned if path.exists()]
    if clashes and not overwrite:
        raise RenderError(
            f"--render {directory} already holds {', '.join(clashes)}; pick an empty directory or pass --overwrite"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path, obj in planned:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(to_yaml(obj))
            tmp.replace(path)
    except OSError as exc:
        raise RenderError(f"--render {directory}: cannot write ({exc.strerror or exc})") from exc
    return [path for path, _ in planned]

"""The README as the package index shows it (hatchling's metadata hook).

README.md links to files of this repository (``docs/…``) by relative path,
which a repository browser resolves. The package index has no repository to
resolve them against (the project publishes no URL), so there each such link
becomes its text and the file's path in the source distribution, which ships
them. Links to sections of the README itself and absolute URLs are kept.
"""

from __future__ import annotations

import re
from pathlib import Path

from hatchling.metadata.plugin.interface import MetadataHookInterface

#: ``[text](target)`` where the target is neither a URL (``scheme:``) nor a ``#section``.
FILE_LINK = re.compile(r"\[([^\]]+)\]\((?![a-zA-Z][a-zA-Z0-9+.-]*:|#)([^)\s]+)\)")


def index_readme(text: str) -> str:
    """``text`` with every link to a repository file turned into words naming the file."""

    def words(link: re.Match) -> str:
        label, target = link.groups()
        path = target.split("#", 1)[0]
        if label.strip("`").rstrip("/") in (path, target, path.rpartition("/")[0]):
            return f"`{path}` in the source distribution"
        return f"{label} (`{path}` in the source distribution)"

    return FILE_LINK.sub(words, text)


class IndexReadmeHook(MetadataHookInterface):
    PLUGIN_NAME = "custom"

    def update(self, metadata: dict) -> None:
        readme = Path(self.root, "README.md").read_text(encoding="utf-8")
        metadata["readme"] = {"content-type": "text/markdown", "text": index_readme(readme)}

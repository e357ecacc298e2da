"""Production static files: our own JavaScript and CSS minified, then compressed by WhiteNoise.

The project has no build step: the pages are small ES modules that import each other by
relative name, so files keep their names (no hashing) and only their bytes shrink. rjsmin and
rcssmin are regex-based, dependency-free minifiers that keep strings, template literals and
regex literals intact and only drop comments and whitespace, which is all we need; comments
go with them, including any `sourceMappingURL`, so no source map is ever referenced.

Third-party files (Django admin, Swagger UI / Redoc from drf-spectacular-sidecar, anything
installed under site-packages) and already minified files (`*.min.js`, `*.min.css`) are
copied as they are: they are not ours to rewrite, and most are minified already.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import rcssmin
import rjsmin
from django.conf import settings
from whitenoise.storage import CompressedStaticFilesStorage


def minify(name: str, text: str) -> str:
    """`text` (the content of the static file `name`) minified; unchanged for other kinds."""
    if name.endswith(".js"):
        return rjsmin.jsmin(text)
    if name.endswith(".css"):
        return rcssmin.cssmin(text)
    return text


def is_ours(source: str) -> bool:
    """Whether a collected file comes from this project's own apps (not an installed package)."""
    path = Path(source).resolve()
    base = Path(settings.BASE_DIR).resolve()
    return path.is_relative_to(base) and "site-packages" not in path.parts


def should_minify(name: str, source: str) -> bool:
    if not name.endswith((".js", ".css")) or name.endswith((".min.js", ".min.css")):
        return False
    return is_ours(source)


class MinifiedCompressedStaticFilesStorage(CompressedStaticFilesStorage):
    """CompressedStaticFilesStorage that minifies our .js and .css in STATIC_ROOT first, so the
    .gz (and .br) files WhiteNoise writes next to them are made from the minified bytes."""

    def post_process(self, paths: dict[str, Any], dry_run: bool = False, **options: Any) -> Iterator[Any]:
        if not dry_run:
            for name, (storage, source_name) in paths.items():
                try:
                    source = storage.path(source_name)
                except NotImplementedError:  # a finder's storage without local files: not ours
                    continue
                if should_minify(name, source):
                    self._minify(name)
        yield from super().post_process(paths, dry_run, **options)

    def _minify(self, name: str) -> None:
        target = Path(self.path(name))
        text = target.read_text(encoding="utf-8")
        minified = minify(name, text)
        # A file left unchanged since the last collectstatic is minified already: rewrite only
        # when the bytes change, so its mtime (collectstatic's "modified" test) stays put.
        if minified != text:
            target.write_text(minified, encoding="utf-8")

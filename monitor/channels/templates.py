"""A digest as text and as HTML, from Jinja2 templates: the body of an email, and
what ``digest --preview`` shows, whatever the desk's channels.

``digest.txt``, ``digest.html``, ``alert.txt``, ``alert.html`` ship in
``monitor/templates``; a file of the same name in the configured
``[templates] dir`` overrides one. HTML templates are autoescaped, so feed
text can only ever be text; links are http(s) only
(:func:`monitor.highlight.safe_url`); there are no images and no scripts. An
override that fails to render is logged and the shipped template is used
instead: a typo must not stop mail.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

if TYPE_CHECKING:
    from monitor.digest import Digest

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    return jinja2.Environment(
        loader=loader,
        # Everything but .txt is escaped, whatever an operator names a template.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm"),
                                            disabled_extensions=("txt",), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


class Renderer:
    """A digest as text and as HTML, from the shipped or the operator's templates."""

    def __init__(self, templates_dir: Path | None = None) -> None:
        shipped = jinja2.FileSystemLoader(TEMPLATES)
        self._shipped = _environment(shipped)
        self._custom = None if templates_dir is None else _environment(
            jinja2.ChoiceLoader([jinja2.FileSystemLoader(templates_dir), shipped]))
        self._reported: set[str] = set()

    def text(self, digest: Digest) -> str:
        return self._render(digest, "txt")

    def html(self, digest: Digest) -> str:
        return self._render(digest, "html")

    def _render(self, digest: Digest, ext: str) -> str:
        name = f"{'alert' if digest.kind == 'alert' else 'digest'}.{ext}"
        if self._custom is not None:
            try:
                return self._custom.get_template(name).render(digest=digest)
            except jinja2.TemplateError as e:
                if name not in self._reported:  # once per template, not per message
                    self._reported.add(name)
                    log.error("template %s: %s: %s; using the shipped one", name,
                              type(e).__name__, e)
        return self._shipped.get_template(name).render(digest=digest)


@functools.lru_cache(maxsize=8)
def renderer(templates_dir: Path | None) -> Renderer:
    """One Renderer per templates folder, so templates compile once per process
    (Jinja2 still notices an edited file: it checks the file's time)."""
    return Renderer(templates_dir)

"""MkDocs build hooks: the settings table from the code, the benchmark plot, Sphinx roles.

- ``<!-- settings-table -->`` in a page is replaced by a table built from the ``Field``
  definitions of :class:`kore_models.settings.Settings` (name, environment variable, type,
  default, allowed values, description), so the page cannot drift from the code. A field
  without a description is reported as a warning, which fails ``mkdocs build --strict``.
- Links from README.md into ``docs/`` are checked, since the README is not part of the site.
- The benchmark plot written by ``python -m benchmarks.run`` is published as
  ``img/throughput_vs_concurrency.png`` without keeping a copy under ``docs/``.
- Docstrings written with Sphinx roles (``:class:`~pkg.Name```) render as plain code, and
  a reST ``::`` before a literal block as a single colon.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.kore_models")

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_MARKER = "<!-- settings-table -->"
PUBLISHED_IMAGES = {
    "img/throughput_vs_concurrency.png": ROOT / "benchmarks/results/throughput_vs_concurrency.png",
    "img/autotune.png": ROOT / "benchmarks/results/autotune.png",
}
_ROLE = re.compile(r":(?:class|meth|func|attr|exc|mod|data|obj):(<code>)~?(?:[\w.]+\.)?")
_KIB = 1024


def _human_bytes(value: int) -> str:
    for unit, size in (("GiB", _KIB**3), ("MiB", _KIB**2), ("KiB", _KIB)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} B"


def _type_name(annotation: Any) -> str:
    name = getattr(annotation, "__name__", None)
    return name if isinstance(name, str) else str(annotation).replace("typing.", "")


def _is_byte_count(field: Any) -> bool:
    """A size: a ``ByteSize``, or an int read by the one size parser (``16MiB`` texts)."""
    if _type_name(field.annotation) == "ByteSize":
        return True
    parsers = [getattr(getattr(m, "func", None), "__name__", "") for m in field.metadata]
    return field.annotation is int and "parse_size" in parsers


def _default(field: Any) -> str:
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        doc = (field.default_factory.__doc__ or "").strip().splitlines()
        return f"computed: {doc[0]}" if doc else "computed"
    value = field.default
    if value is PydanticUndefined:
        return "required"
    secret = getattr(value, "get_secret_value", None)
    if value == "" or (callable(secret) and secret() == ""):
        return "required"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int) and _is_byte_count(field):
        return f"{_human_bytes(value)} (`{value}`)"
    return f"`{value}`"


def _bounds(field: Any, *, as_bytes: bool) -> str:
    words = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    found = []
    for item in field.metadata:
        for attr, symbol in words.items():
            bound = getattr(item, attr, None)
            if bound is not None:
                shown = _human_bytes(bound) if as_bytes and isinstance(bound, int) else bound
                found.append(f"{symbol} {shown}")
    return ", ".join(found)


def _env_name(name: str, field: Any, prefix: str) -> str:
    alias = field.validation_alias
    return alias.upper() if isinstance(alias, str) else f"{prefix}{name}".upper()


def settings_table() -> str:
    """The Markdown table of every client setting, read from the pydantic model."""
    from kore_models.settings import Settings

    prefix = str(Settings.model_config.get("env_prefix", ""))
    rows = [
        "| Setting and variable | Type | Default | Allowed | Description |",
        "|---|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        if not description:
            log.warning("Settings.%s has no Field description for the settings table", name)
        as_bytes = _is_byte_count(field)
        if as_bytes:
            kind = "bytes (`int` or a text such as `16MiB`)"
        else:
            kind = f"`{_type_name(field.annotation)}`"
        rows.append(
            f"| `{name}`<br>`{_env_name(name, field, prefix)}` | {kind} "
            f"| {_default(field)} | {_bounds(field, as_bytes=as_bytes)} "
            f"| {description} |"
        )
    return "\n".join(rows)


def on_pre_build(config: MkDocsConfig) -> None:
    """The README is not part of the site: check its links into ``docs/`` here."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\((docs/[^)#\s]+)", readme):
        if not (ROOT / target).is_file():
            log.warning("README.md links to %s, which does not exist", target)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for uri, source in PUBLISHED_IMAGES.items():
        if source.is_file():
            files.append(File.generated(config, uri, abs_src_path=str(source)))
        else:
            log.warning("%s is missing; run the benchmarks to write it", source)
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if SETTINGS_MARKER in markdown:
        markdown = markdown.replace(SETTINGS_MARKER, settings_table())
    return markdown


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    # reST's "text::" before a literal block renders as "text:" followed by the block
    return _ROLE.sub(r"\1", html).replace("::</p>", ":</p>")

"""Import arrows and module hygiene: every module has a layer and imports only downwards."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "kore_models"

# Top-level modules and packages of kore_models, lowest layer first. A module may import
# from its own layer's package and from lower layers only (imports needed only for type
# checking, under ``if TYPE_CHECKING:``, are exempt). A new module must be placed here.
LAYERS: dict[str, int] = {
    "redaction": 0,
    "units": 0,
    "_encoding": 0,
    "errors": 1,
    "types": 1,
    "settings": 2,
    "_atomic": 2,
    "_urls": 2,
    "results": 3,
    "_proxy": 3,
    "_retry": 4,
    "_pace": 4,
    "_network": 4,
    "_body": 5,
    "_http": 5,
    "ledger": 6,
    "transfer": 6,
    "resources": 7,
    "client": 8,
    "toolkit": 8,
    "sync": 9,
    "progress_display": 9,
    "testing": 10,
    "cli": 10,
    "__init__": 11,
}
# The emulator is a separate program: it imports nothing of the client.
ISOLATED = {"emulator"}
# Who may start the emulator in-process: the command line and the pytest plugin.
EMULATOR_USERS = {"cli", "testing"}


def _layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    return skipped


def imported_modules(path: Path, root: Path = PACKAGE) -> set[str]:
    """The dotted kore_models modules (below the package) that ``path`` imports at run time;
    ``__init__`` stands for the package root."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    package_parts = path.relative_to(root).parent.parts
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(
                alias.name.split(".", 1)[1]
                for alias in node.names
                if alias.name.startswith("kore_models.")
            )
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = list(package_parts[: len(package_parts) - (node.level - 1)])
            target = base + (node.module.split(".") if node.module else [])
            if not target:  # from .. import x: x is a top-level module (or a name of the root)
                found.update(alias.name for alias in node.names)
        elif node.module and node.module.split(".")[0] == "kore_models":
            target = node.module.split(".")[1:]
        else:
            continue
        found.add(".".join(target) or "__init__")
    return found


def imported_layers(path: Path, root: Path = PACKAGE) -> set[str]:
    """The top-level kore_models modules that ``path`` imports at run time."""
    return {module.split(".")[0] for module in imported_modules(path, root)}


MODULES = sorted(PACKAGE.rglob("*.py"))
IDS = [str(p.relative_to(PACKAGE)) for p in MODULES]


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_every_module_has_a_layer_and_imports_only_downwards(path: Path) -> None:
    layer = _layer(path)
    imported = imported_layers(path) - {layer}
    if layer in ISOLATED:
        assert not imported, f"{path.name} (emulator) imports {sorted(imported)} of the client"
        return
    assert layer in LAYERS, f"{layer} has no layer in tests/test_architecture.py"
    if layer in EMULATOR_USERS:
        imported -= ISOLATED
    upward = {name for name in imported if LAYERS.get(name, 99) >= LAYERS[layer]}
    assert not upward, f"{path.name} ({layer}) imports {sorted(upward)} from its layer or above"


# The public API: what the docs' reference documents, plus the toolkit of CLI building blocks.
# Private modules (a leading underscore) and the transfer/resources internals are not in it.
PUBLIC_MODULES = {
    "__init__",
    "client",
    "errors",
    "ledger",
    "progress_display",
    "redaction",
    "results",
    "settings",
    "toolkit",
    "types",
    "units",
}


CLI_MODULES = sorted((PACKAGE / "cli").rglob("*.py"))


@pytest.mark.parametrize("path", CLI_MODULES, ids=[p.name for p in CLI_MODULES])
def test_the_command_line_uses_only_the_public_api(path: Path) -> None:
    outside = {m for m in imported_modules(path) if m.split(".")[0] != "cli"}
    private = {
        m
        for m in outside
        if m not in PUBLIC_MODULES and m.split(".")[0] not in ISOLATED  # the emulator program
    }
    hint = "use kore_models.toolkit"
    assert not private, f"cli/{path.name} imports internals {sorted(private)}: {hint}"


def test_the_public_api_check_sees_an_internal_import(tmp_path: Path) -> None:
    # Guard the guard: an import of a transfer module from the CLI is reported by its full name.
    probe = tmp_path / "kore_models" / "cli" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text('"""Probe."""\nfrom ..transfer.journal import x\nfrom .output import y\n')
    assert imported_modules(probe, tmp_path / "kore_models") == {"transfer.journal", "cli.output"}


def test_the_package_root_imports_no_command_line() -> None:
    assert "cli" not in imported_layers(PACKAGE / "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_module_has_docstring_and_stays_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    docstring = ast.get_docstring(tree)
    assert docstring, f"{path} has no module docstring"
    assert len(text.splitlines()) <= 450, f"{path} has grown past ~400 lines"


def test_the_layer_check_sees_imports_but_not_type_checking_ones(tmp_path: Path) -> None:
    # Guard the guard: a run-time upward import is found, a type-checking one is not.
    root = tmp_path / "kore_models"
    probe = root / "transfer" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        '"""Probe."""\nfrom typing import TYPE_CHECKING\nfrom ..client import KoreClient\n'
        "if TYPE_CHECKING:\n    from ..resources import Files\n",
        encoding="utf-8",
    )
    assert imported_layers(probe, root) == {"client"}

"""Import arrows and module hygiene: cli -> client -> transfer -> resources -> _http -> _retry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "kore_models"

# A module in the key's layer may not import from any layer listed for it.
FORBIDDEN = {
    "emulator": (
        "cli",
        "client",
        "verbs",
        "transfer",
        "resources",
        "_http",
        "_retry",
        "_body",
        "errors",
        "settings",
        "types",
    ),
    "transfer": ("cli", "client", "emulator"),
    "resources": ("cli", "client", "verbs", "transfer", "emulator"),
    "_http": ("cli", "client", "verbs", "transfer", "resources", "emulator"),
    "_retry": ("cli", "client", "verbs", "transfer", "resources", "emulator", "_http"),
    "errors": ("cli", "client", "verbs", "transfer", "resources", "emulator", "_http", "_retry"),
}


def _layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package_parts = path.relative_to(PACKAGE).parent.parts
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package_parts[: len(package_parts) - (node.level - 1)])
                target = base + (node.module.split(".") if node.module else [])
                if not target:
                    found.update(alias.name for alias in node.names)
                else:
                    found.add(target[0])
            elif node.module and node.module.startswith("kore_models."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("kore_models."):
                    found.add(alias.name.split(".")[1])
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path: Path) -> None:
    layer = _layer(path)
    forbidden = set(FORBIDDEN.get(layer, ())) & _imported_layers(path)
    assert not forbidden, f"{path.name} ({layer}) imports {sorted(forbidden)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_has_docstring_and_stays_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    assert ast.get_docstring(tree), f"{path} has no module docstring"
    assert len(text.splitlines()) <= 450, f"{path} has grown past ~400 lines"

"""Named profiles in ``config.toml``: where the file is, how it is read, what a profile may set."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ..settings import Settings

__all__ = [
    "PROFILE_ONLY_KEYS",
    "Profile",
    "config_path",
    "load_profile",
    "profile_keys",
    "profile_names",
]

# keys a profile may hold that are not client settings
PROFILE_ONLY_KEYS = ("api_key_file",)
# settings a profile must not hold: the key belongs in a file of its own (api_key_file)
_FORBIDDEN = {"api_key": "put the key in a file of its own and name it with api_key_file"}


def config_path() -> Path:
    """``$KORE_CONFIG``, else ``$XDG_CONFIG_HOME/kore-models/config.toml`` (``~/.config``)."""
    explicit = os.environ.get("KORE_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kore-models" / "config.toml"


def profile_keys() -> list[str]:
    """Every key a profile may set: the client settings (but the key itself) and api_key_file."""
    names = [n for n in Settings.model_fields if n not in _FORBIDDEN]
    return sorted([*names, *PROFILE_ONLY_KEYS])


@dataclass(frozen=True)
class Profile:
    """The chosen profile: its name, the file it came from and its values."""

    name: str | None = None
    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``profile dev (~/.config/kore-models/config.toml)`` for ``config show``."""
        return f"profile {self.name} ({self.path})"

    def get(self, key: str) -> Any:
        """The profile's value for ``key`` (None when it does not set it)."""
        return self.values.get(key)


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise click.UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise click.UsageError(f"{path} is not valid TOML: {exc}") from None


def _check(name: str, path: Path, values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise click.UsageError(f"{path}: [profiles.{name}] must be a table")
    allowed = profile_keys()
    for key in values:
        if key in _FORBIDDEN:
            raise click.UsageError(f"{path}: [profiles.{name}] {key}: {_FORBIDDEN[key]}")
        if key not in allowed:
            raise click.UsageError(
                f"{path}: [profiles.{name}] has an unknown key {key!r}; "
                f"known keys: {', '.join(allowed)}"
            )
    checked = dict(values)
    if "api_key_file" in checked:
        checked["api_key_file"] = Path(str(checked["api_key_file"])).expanduser()
    return checked


def load_profile(name: str | None) -> Profile:
    """The profile called ``name``, else the file's ``default_profile``, else no profile.

    A name that the file does not define is a usage error (exit 2) naming the ones it has.
    """
    path = config_path()
    document = _read(path)
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise click.UsageError(f"{path}: profiles must be a table ([profiles.NAME])")
    chosen = name or document.get("default_profile")
    if not chosen:
        return Profile()
    if chosen not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        where = f"{path}" if path.exists() else f"{path} (no such file)"
        raise click.UsageError(f"no profile {chosen!r} in {where}; profiles there: {known}")
    return Profile(str(chosen), path, _check(str(chosen), path, profiles[chosen]))


def profile_names() -> list[str]:
    """The names of the profiles in the config file (sorted; none when it does not exist)."""
    profiles = _read(config_path()).get("profiles", {})
    return sorted(profiles) if isinstance(profiles, dict) else []

"""Thin one-to-one wrappers of the API endpoints: build the path, send, parse into types."""

from .dock_status import DockStatusAPI
from .files import FilesAPI
from .models import ModelsAPI

__all__ = ["DockStatusAPI", "FilesAPI", "ModelsAPI"]

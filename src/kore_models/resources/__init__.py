"""The public namespaces of a client: ``kore.files``, ``kore.models``, ``kore.dock_status``."""

from .dock_status import DockStatus
from .files import Files
from .models import Models

__all__ = ["DockStatus", "Files", "Models"]

"""Public building blocks behind the command line: upload sources, journals, proxy secrets.

The command line is built on the public API only (``tests/test_architecture.py`` checks it).
What it needs beyond :class:`~kore_models.KoreClient` is here, under stable names, for tools
that want to do what it does: plan an upload without sending it (``--dry-run``), fingerprint a
file the way the ledger does (``--skip-existing``), list and clean unfinished journals, know
which proxy passwords to hide, and replace a JSON file atomically.
"""

from __future__ import annotations

from ._atomic import write_json_atomically
from ._proxy import proxy_secrets
from .transfer.folder import FolderEntry, FolderFilter, FolderListing, list_folder
from .transfer.journal import regular_file_fingerprint
from .transfer.journal_scan import JournalInfo, JournalState, clean_journals, scan_journals
from .transfer.source import UploadSource, prepare_source
from .transfer.tarstream import TarArchive

__all__ = [
    "FolderEntry",
    "FolderFilter",
    "FolderListing",
    "JournalInfo",
    "JournalState",
    "TarArchive",
    "UploadSource",
    "clean_journals",
    "list_folder",
    "prepare_source",
    "proxy_secrets",
    "regular_file_fingerprint",
    "scan_journals",
    "write_json_atomically",
]

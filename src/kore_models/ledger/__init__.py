"""The local ledger of completed imports and exports (``<state_dir>/ledger.sqlite3``)."""

from .records import export_entry, import_entry, note_transfer, previous_import, record_transfer
from .store import (
    LEDGER_FILE,
    SCHEMA_VERSION,
    Ledger,
    LedgerEntry,
    LedgerError,
    LedgerLockedError,
    LedgerVersionError,
    ledger_path,
    utc_now,
)

__all__ = [
    "LEDGER_FILE",
    "SCHEMA_VERSION",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerLockedError",
    "LedgerVersionError",
    "export_entry",
    "import_entry",
    "ledger_path",
    "note_transfer",
    "previous_import",
    "record_transfer",
    "utc_now",
]

"""Tests: integrity (SHA-256 of transfers, verify, the ledger, journals)."""

"""Tests: model folders (listing, filter, virtual tar, folder imports)."""

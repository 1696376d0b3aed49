"""Tests: emulator."""

"""Helpers shared by the test suites: emulator control, test files, fake servers."""

"""Tests that the documentation's examples run."""

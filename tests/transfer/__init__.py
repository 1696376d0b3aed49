"""Tests: transfer."""

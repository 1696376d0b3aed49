"""Tests: proxies, TLS, trust options and mutual TLS against real components on loopback."""

"""Suite-wide fixtures: the live-emulator fixtures of :mod:`tests.support.emulator_fixtures`."""

pytest_plugins = ["tests.support.emulator_fixtures"]

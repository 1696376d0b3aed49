"""Fixtures of the transfer-engine suite: the shared live-emulator fixtures (``emu``, ``ctl``,
``clients``, ``kore``, ``make_file``) from :mod:`tests.support.emulator_fixtures`."""

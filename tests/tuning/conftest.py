"""Fixtures of the tuning suite: the shared live-emulator fixtures (``emu``, ``ctl``,
``make_file``) from :mod:`tests.support.emulator_fixtures`; the pure pieces run on virtual
time with the helpers of :mod:`tests.support.tuning`."""

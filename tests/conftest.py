"""Suite-wide set-up: the live-emulator fixtures, and Ctrl-C as a terminal delivers it."""

import signal

pytest_plugins = ["tests.support.emulator_fixtures"]


def pytest_configure() -> None:
    """A suite started in the background (``make test &``, ``nohup``) inherits SIGINT ignored,
    and so would every CLI it starts: the Ctrl-C tests would then see an import that cannot
    be interrupted. Handling SIGINT here makes each child start with the terminal's default."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

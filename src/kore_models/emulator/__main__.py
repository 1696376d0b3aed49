"""Entry point for `python -m kore_models.emulator`."""

from .command import main

if __name__ == "__main__":
    main()

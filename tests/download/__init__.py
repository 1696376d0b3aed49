"""The download suite: export downloads against the emulator and hostile servers."""

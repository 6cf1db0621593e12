from slob_tui.cli import entry

entry()

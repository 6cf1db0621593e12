import sys

from slob_tui.cli import main

sys.exit(main())

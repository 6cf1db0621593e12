"""Console tests run Textual headless; keep the default colour system out of the environment."""

from __future__ import annotations

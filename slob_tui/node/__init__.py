"""The node: one owner that builds, starts and stops every part of a running engine."""

from slob_tui.node.config import NodeConfig, from_args
from slob_tui.node.node import TradingNode

__all__ = ["NodeConfig", "TradingNode", "from_args"]

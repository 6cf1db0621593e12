"""A local Alpaca for tests: market-data streams, trade_updates and REST on 127.0.0.1.

`LocalAlpaca(trades, api_key, api_secret, ...)`; `await server.start()` (port 0 = any free
port); then `server.stream_url("iex")`, `server.rest_url`, `server.trading_stream_url`.
See `server.py` for the fault controls, `trading.py` for the order engine and
`replay_fills.py` for fills that follow an engine's replay.
"""

from .replay_fills import Bar, ReplayFills
from .server import LocalAlpaca, MarketClock
from .trades import Trade, alpaca_conditions, fakepaca_trades, load_algoseek_trades, minute_bars
from .trading import OrderRejected, TradingEngine

__all__ = [
    "Bar",
    "ReplayFills",
    "LocalAlpaca",
    "MarketClock",
    "OrderRejected",
    "Trade",
    "TradingEngine",
    "alpaca_conditions",
    "fakepaca_trades",
    "load_algoseek_trades",
    "minute_bars",
]

"""Alpaca's price grid: exit prices go to the first cent at or beyond the strategy's level."""

from __future__ import annotations

import pytest

from slob_tui.brokers.alpaca import AlpacaBroker, to_price_grid
from slob_tui.brokers.base import OrderRequest
from slob_tui.config import Settings
from slob_tui.core.models import Side


def _broker() -> AlpacaBroker:
    return AlpacaBroker(Settings(alpaca_api_key="PKUNIT", alpaca_api_secret="s"), stream=False)


@pytest.mark.parametrize(
    ("x", "decimals", "up", "want"),
    [
        (168.2333816, 2, True, 168.24),
        (168.2333816, 2, False, 168.23),
        (165.66, 2, True, 165.66),  # on the grid already (165.66 * 100 is 16565.999...)
        (165.66, 2, False, 165.66),
        (0.1 + 0.2, 2, False, 0.3),
        (29_480.123456789, 8, True, 29_480.12345679),
    ],
)
def test_prices_round_to_the_grid_in_the_asked_direction(x, decimals, up, want) -> None:
    assert to_price_grid(x, decimals, up) == want


def test_a_short_brackets_stop_is_not_moved_toward_the_entry() -> None:
    """SPY minutes as QQQ: the stop 168.2333816 of a short must not become 168.23, which a
    bar with a 168.23 high would reach although the strategy's stop was not."""
    short = _broker()._request(
        OrderRequest("c1", "QQQ", Side.SELL, 1, take_profit=168.0067, stop_loss=168.2333816)
    )
    assert (short.stop_loss.stop_price, short.take_profit.limit_price) == (168.24, 168.0)
    long = _broker()._request(
        OrderRequest("c2", "QQQ", Side.BUY, 1, take_profit=410.006, stop_loss=395.004)
    )
    assert (long.stop_loss.stop_price, long.take_profit.limit_price) == (395.0, 410.01)


def test_single_orders_round_away_from_the_market() -> None:
    b = _broker()
    sell_stop = b._request(OrderRequest("s1", "QQQ", Side.SELL, 1, "stop", stop_price=99.999))
    buy_stop = b._request(OrderRequest("s2", "QQQ", Side.BUY, 1, "stop", stop_price=100.001))
    sell_limit = b._request(OrderRequest("l1", "QQQ", Side.SELL, 1, "limit", limit_price=100.001))
    buy_limit = b._request(OrderRequest("l2", "QQQ", Side.BUY, 1, "limit", limit_price=99.999))
    assert (sell_stop.stop_price, buy_stop.stop_price) == (99.99, 100.01)
    assert (sell_limit.limit_price, buy_limit.limit_price) == (100.01, 99.99)
    stop_limit = b._request(
        OrderRequest("sl", "QQQ", Side.SELL, 1, "stop_limit", limit_price=98.001, stop_price=99.999)
    )
    assert (stop_limit.stop_price, stop_limit.limit_price) == (99.99, 98.01)

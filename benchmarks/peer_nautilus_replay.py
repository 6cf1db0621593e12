"""NautilusTrader's whole process on a tick file: `python -m benchmarks.peer_nautilus_replay FILE`.

What a Nautilus user does to get 1-minute bars out of a trade file: read it (pandas; CSV,
CSV.gz or Parquet), build `TradeTick`s, run a `BacktestEngine` whose strategy subscribes to
the bars. Configured as in `peers_nautilus.py` (right-open minutes stamped at the start). It
prints the number of bars so the suite can check the peer did the whole job. Not timed here:
the suite times the process from the outside, as it times `slob-tui replay`.
"""

from __future__ import annotations

import sys


def main(path: str) -> int:
    import numpy as np
    import pandas as pd

    from benchmarks import peers_nautilus

    if path.endswith((".parquet", ".pq")):
        frame = pd.read_parquet(path, columns=["timestamp", "price", "size"])
    else:
        frame = pd.read_csv(path, usecols=["timestamp", "price", "size"])
    ts = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    stamps = ts.dt.as_unit("ns").astype("int64").to_numpy()
    inst = peers_nautilus.instrument("SPY", "ARCA")
    ticks = peers_nautilus.trade_ticks(
        inst, stamps, frame["price"].to_numpy(np.float64), frame["size"].to_numpy(np.float64),
        init_delay_ns=1,
    )  # fmt: skip
    del frame, ts, stamps
    bars = peers_nautilus.backtest_ticks_run(inst, ticks)()
    print(len(bars))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

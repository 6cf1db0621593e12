"""Parameter search with out-of-sample proof: the engine behind `slob-tui optimize`.

Sits above `strategy` (it runs the pure backtest many times) and below `commands`. Optuna and
Dask are imported inside the functions that need them, so importing this package stays cheap.
"""

"""The optimize report: the JSON document, the terminal table and curves, the `--param` line."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slob_tui.research.optimize import OptimizeResult
from slob_tui.research.search import WindowChoice
from slob_tui.research.space import Choice, SearchSpace
from slob_tui.research.windows import Span


def iso(ns: int) -> str:
    """ISO 8601 UTC with a Z, to the second (candles start on whole minutes)."""
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(span: Span | None) -> list[str] | None:
    return None if span is None else [iso(span.start_ns), iso(span.end_ns)]


def _score(choice: WindowChoice, part: str) -> float | None:
    ev = choice.in_sample if part == "in" else choice.out_of_sample
    return None if ev is None else ev.score.value


def _trades(choice: WindowChoice, part: str) -> int | None:
    ev = choice.in_sample if part == "in" else choice.out_of_sample
    return None if ev is None else ev.score.trades


def best_params(result: OptimizeResult) -> dict[str, Any] | None:
    """The last window's choice: what a user would trade next."""
    return result.choices[-1].values if result.choices else None


def to_json(result: OptimizeResult) -> dict[str, Any]:
    """The `--json` document (shape in docs/OPTIMIZE.md)."""
    s = result.settings
    return {
        "objective": s.objective.name,
        "seed": s.seed,
        "trials": s.trials,
        "best_params": best_params(result),
        "windows": [
            {
                "in_sample": _span(c.window.in_sample),
                "out_of_sample": _span(c.window.out_of_sample),
                "params": c.values,
                "in_sample_score": _score(c, "in"),
                "out_of_sample_score": _score(c, "out"),
                "trades": {"in_sample": _trades(c, "in"), "out_of_sample": _trades(c, "out")},
            }
            for c in result.choices
        ],
    }


def ratio(choice: WindowChoice) -> float | None:
    """Out-of-sample score over in-sample score (walk-forward efficiency)."""
    ins, outs = _score(choice, "in"), _score(choice, "out")
    if ins is None or outs is None or ins == 0:
        return None
    return outs / ins


def drift(
    space: SearchSpace, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> float | None:
    """How far the chosen values moved: mean over searched knobs of the move as a share of
    the knob's range (a changed choice counts 1)."""
    if before is None or after is None or not space.dimensions:
        return None
    moves: list[float] = []
    for name, dim in space.dimensions.items():
        a, b = before.get(name), after.get(name)
        if isinstance(dim, Choice) or a is None or b is None:
            moves.append(0.0 if a == b else 1.0)
        elif dim.high > dim.low:
            moves.append(abs(float(b) - float(a)) / (dim.high - dim.low))
        else:
            moves.append(0.0)
    return sum(moves) / len(moves)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def param_args(result: OptimizeResult) -> str:
    """The chosen and fixed parameters as `backtest` flags."""
    values = dict(result.space.fixed_overrides())
    values.update(best_params(result) or {})
    return " ".join(f"--param {k}={_fmt(v)}" for k, v in sorted(values.items()))


def _short(span: Span | None) -> str:
    """`2023-11-19 23:00 → 11-21 22:00` (UTC): a span in one narrow cell."""
    if span is None:
        return "-"
    start, end = iso(span.start_ns), iso(span.end_ns)
    return f"{start[:10]} {start[11:16]} → {end[5:10]} {end[11:16]}"


def _num(value: float | None, fmt: str = "{:+.2f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def table(result: OptimizeResult) -> Any:
    """A rich table: one row per window, in-sample and out-of-sample side by side."""
    from rich.table import Table

    s = result.settings
    t = Table(
        title=f"optimize {s.symbol}: {s.objective.name}, {s.trials} trials per window, "
        f"seed {s.seed}, on {result.runner}"
    )
    for col in (
        "window",
        "in-sample",
        "out-of-sample",
        "IS score",
        "OOS score",
        "OOS/IS",
        "trades IS/OOS",
        "moved",
    ):
        right = "score" in col or col in ("OOS/IS", "moved")
        t.add_column(col, justify="right" if right else "left", no_wrap="sample" in col)
    prev: dict[str, Any] | None = None
    for c in result.choices:
        w = c.window
        spans = [_short(w.in_sample), _short(w.out_of_sample)]
        moved = drift(result.space, prev, c.values) if c.window.index else None
        t.add_row(
            str(w.index + 1),
            spans[0],
            spans[1],
            _num(_score(c, "in")),
            _num(_score(c, "out")),
            _num(ratio(c), "{:.2f}"),
            f"{_trades(c, 'in') if c.in_sample else '-'}/"
            f"{_trades(c, 'out') if c.out_of_sample else '-'}",
            _num(moved, "{:.0%}"),
        )
        prev = c.values
    return t


def equity_plot(result: OptimizeResult, width: int = 72, height: int = 14) -> str:
    """In-sample and out-of-sample equity, each window's curve stitched after the last."""
    import plotext as plt

    curves: dict[str, list[float]] = {"in-sample": [0.0], "out-of-sample": [0.0]}
    for c in result.choices:
        for label, ev in (("in-sample", c.in_sample), ("out-of-sample", c.out_of_sample)):
            if ev is None:
                continue
            offset = curves[label][-1]
            curves[label].extend(offset + r for _, r in ev.equity)
    if all(len(v) == 1 for v in curves.values()):
        return "  (no closed trades: no equity curves)"
    plt.clear_figure()
    plt.theme("clear")
    plt.plotsize(width, height)
    for label, ys in curves.items():
        if len(ys) > 1:
            plt.plot(list(range(len(ys))), ys, label=label)
    plt.title("equity (cumulative R per closed trade, windows stitched)")
    text: str = plt.build()  # plotext is untyped
    return text

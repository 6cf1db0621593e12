"""`python -m benchmarks [--quick] [--only NAME ...] [--json PATH]`: every figure, one command.

Prints a table and writes JSON records (figure, value, unit, peer, peer_value, ratio, goal, met,
status, note). Exit status: 0 when every selected figure ran or was skipped with a reason,
1 when one failed (a correctness check included), 2 on bad usage or missing data.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import (  # noqa: F401 - importing registers the figures
    bench_optimize,
    figures_aggregator,
    figures_attach,
    figures_backtest,
    figures_console,
    figures_pipeline,
    figures_replay,
    figures_store,
)
from benchmarks.suite import (
    DEFAULT_JSON,
    REGISTRY,
    REPO_ROOT,
    Context,
    DataMissing,
    Record,
    Skip,
    locate_data,
    render_table,
    write_json,
)

DEFAULT_REPS = 7
QUICK_REPS = 2


def build_parser() -> argparse.ArgumentParser:
    names = ", ".join(REGISTRY)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="slob-tui figures measured side by side with their peers in one run.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller sizes")
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"figures to run: {names}")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write records")
    parser.add_argument("--reps", type=int, help="repetitions per figure (median is reported)")
    parser.add_argument(
        "--data", type=Path, help="folder of the real market files (default: ../shared/data)"
    )
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    return parser


def _meta(quick: bool, reps: int) -> dict[str, object]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    from benchmarks import peers_nautilus

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "quick": quick,
        "reps": reps,
        "peer_nautilus": peers_nautilus.label()
        if peers_nautilus.unavailable_reason() is None
        else peers_nautilus.unavailable_reason(),
        "commit": commit,
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def compiled_like_an_install(scratch: Path) -> None:
    """Child processes (start-up, whole-process replay and their peers) load bytecode as an
    installed package does: `pip install` compiles every module, and a user's second run of an
    editable checkout finds the `.pyc` files the first wrote. With PYTHONDONTWRITEBYTECODE set
    (some shells and CI images set it) each child compiled every module of ours and of
    NautilusTrader's from source, about 0.2 s a run. The bytecode goes to the scratch folder,
    not into the checkout; each figure's untimed first run writes it."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for fig in REGISTRY.values():
            print(f"{fig.name:18} {fig.summary}")
        return 0
    selected = args.only or list(REGISTRY)
    unknown = [n for n in selected if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown figure {unknown[0]!r}; choose from {', '.join(REGISTRY)}")
    if args.reps is not None and args.reps < 1:
        parser.error("--reps must be at least 1")
    reps = args.reps or (QUICK_REPS if args.quick else DEFAULT_REPS)
    try:
        data_dir = locate_data(args.data)
    except DataMissing as exc:
        print(f"benchmarks: error: {exc}", file=sys.stderr)
        return 2

    records: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="slob-bench-") as scratch:
        compiled_like_an_install(Path(scratch))
        ctx = Context(data_dir=data_dir, quick=args.quick, reps=reps, work_dir=Path(scratch))
        for name in selected:
            print(f"[{name}] {REGISTRY[name].summary} ...", flush=True)
            started = time.perf_counter()
            try:
                for record in REGISTRY[name].fn(ctx):
                    records.append(record)
            except Skip as exc:
                print(f"[{name}] skipped: {exc}", flush=True)
                records.append(Record(name, None, "", status="skipped", note=str(exc)))
            except Exception as exc:  # noqa: BLE001 - one failed figure must not hide the rest
                print(f"[{name}] FAILED: {type(exc).__name__}: {exc}", flush=True)
                records.append(
                    Record(name, None, "", status="error", note=f"{type(exc).__name__}: {exc}")
                )
            print(f"[{name}] done in {time.perf_counter() - started:.1f} s", flush=True)

    print()
    print(render_table(records))
    write_json(records, args.json, _meta(args.quick, reps))
    print(f"\nwrote {len(records)} records to {args.json}")
    return 1 if any(r.status == "error" for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())

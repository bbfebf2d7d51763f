"""``python -m bench``: run the benchmarks and print their figures."""
from __future__ import annotations

import argparse
import sys

from bench import notifications


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--count", type=int, default=10_000,
                        help="notifications (and bare tasks) to run (default 10000)")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="worker processes (default 2, one per core)")
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql",
                        help="database (default postgresql at 127.0.0.1:5432)")
    args = parser.parse_args(argv)
    ok = notifications.run(count=args.count, concurrency=args.concurrency, db=args.db)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

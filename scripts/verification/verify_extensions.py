#!/usr/bin/env python3
"""The original TripSage entry point, kept working: verify the database (`tripsage verify`).

Reads SUPABASE_DB_URL (or DATABASE_URL). Extra arguments (e.g. --json) are passed on. Exit code 0 only when every
required check passes.
"""

import os
import subprocess
import sys


def main() -> int:
    if not (os.environ.get("SUPABASE_DB_URL") or os.environ.get("DATABASE_URL")):
        print("error: set SUPABASE_DB_URL or DATABASE_URL to the database to verify", file=sys.stderr)
        return 1
    return subprocess.call([sys.executable, "-m", "tripsage", "verify", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())

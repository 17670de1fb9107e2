#!/usr/bin/env python3
"""The original TripSage entry point, kept working: deploy the migrations, then verify.

Reads SUPABASE_DB_URL (or DATABASE_URL), exactly as before; runs `tripsage deploy` then `tripsage verify`.
Exit code 0 only when both succeed.
"""

import os
import subprocess
import sys


def main() -> int:
    if not (os.environ.get("SUPABASE_DB_URL") or os.environ.get("DATABASE_URL")):
        print("error: set SUPABASE_DB_URL or DATABASE_URL to the database to deploy to", file=sys.stderr)
        return 1
    for command in (["deploy"], ["verify"]):
        code = subprocess.call([sys.executable, "-m", "tripsage", *command])
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())

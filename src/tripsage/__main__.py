"""`python -m tripsage` is the `tripsage` command."""

from tripsage.cli import main

main()

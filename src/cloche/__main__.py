"""`python -m cloche` runs the CLI (the daemon is started this way: `python -m cloche serve`)."""

from cloche.cli.main import main

main()

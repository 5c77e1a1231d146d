"""`python -m poolwatch`."""

from poolwatch.cli import main

raise SystemExit(main())

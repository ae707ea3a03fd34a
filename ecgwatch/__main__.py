"""``python -m ecgwatch`` = the ``ecgwatch`` command."""

from ecgwatch.cli import main

raise SystemExit(main())

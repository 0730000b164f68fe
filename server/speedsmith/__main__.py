"""``python -m speedsmith``: same as the ``speedsmith`` console script."""

from speedsmith.cli import main

raise SystemExit(main())

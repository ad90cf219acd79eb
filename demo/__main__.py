"""``python -m demo`` is ``python -m demo.generate``."""

from demo.generate import main

raise SystemExit(main())

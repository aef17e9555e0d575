"""``python -m wddmemu``: the ``wddmemu`` command, for an environment whose scripts directory is
not on ``PATH``."""

from wddmemu._cli import main

if __name__ == "__main__":  # not when a spawned worker (--cluster local:N) imports it again
    raise SystemExit(main())

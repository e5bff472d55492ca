"""``python -m anchor_orm``: the same command as ``anchor-orm``."""

from anchor_orm.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m longtail.cli``."""

from longtail.cli import main

main()

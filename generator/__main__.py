"""`python -m generator`: write the sample store (see `python -m generator --help`)."""

from generator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

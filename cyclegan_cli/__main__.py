"""Allow ``python -m cyclegan_cli``."""

from cyclegan_cli.cli import main

if __name__ == "__main__":
    main()

"""``python -m edgernn``: the same CLI as the ``edgernn`` console script."""

from edgernn.cli.commands import main

if __name__ == "__main__":
    main()

"""The ``edgernn`` command line: the commands (``commands``), their option types, the exit codes and one-line
errors (``exit_codes``), the signing commands and the demo. Empty at import: ``edgernn --help`` loads click and
the command table only (``edgernn.cli.commands:main`` is the console script)."""

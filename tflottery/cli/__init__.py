"""The `tflottery` command line: `commands` (one function per command), `runner` (errors, flags, quiet start)."""
from tflottery.cli.commands import COMMANDS, main

__all__ = ["COMMANDS", "main"]

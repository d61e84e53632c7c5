"""The `gateway` command line: run, migrate, keys, clients, tokens, the log's audit.

The top room: it may use every other one, and none uses it.
"""

from gateway.cli._main import main

__all__ = ["main"]

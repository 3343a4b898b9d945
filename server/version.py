"""The version of metagpt-lsp: the same string as ``version`` in pyproject.toml (tests/test_cli.py checks it against
the installed package's metadata).

A literal rather than ``importlib.metadata.version(...)``: that import alone costs 10-20 ms of start-up, and the
version is needed before ``initialize`` can be answered (it is the ``serverInfo.version``).
"""

__version__ = "0.1.0"

"""The installed version of metagpt-lsp."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("metagpt-lsp")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

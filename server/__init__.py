"""The LSP face of metagpt-lsp: the pygls server, document store, features, settings and CLI."""

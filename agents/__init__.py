"""The agent team of metagpt-lsp: a library that knows nothing of LSP (it never imports metagpt_lsp.server)."""

"""The one place that registers LSP features: each handler is a thin call into the module that owns the idea."""

from __future__ import annotations

from lsprotocol import types

from . import configuration, text_sync
from .language_server import MetagptLanguageServer


def create_server() -> MetagptLanguageServer:
    server = MetagptLanguageServer()

    @server.feature(types.INITIALIZE)
    def _initialize(ls: MetagptLanguageServer, params: types.InitializeParams) -> None:
        configuration.initialize(ls, params)

    @server.feature(types.INITIALIZED)
    async def _initialized(ls: MetagptLanguageServer, params: types.InitializedParams) -> None:
        await configuration.initialized(ls, params)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def _did_change_configuration(ls: MetagptLanguageServer,
                                        params: types.DidChangeConfigurationParams) -> None:
        await configuration.did_change_configuration(ls, params)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def _did_open(ls: MetagptLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        text_sync.did_open(ls, params)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def _did_change(ls: MetagptLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        text_sync.did_change(ls, params)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def _did_close(ls: MetagptLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        text_sync.did_close(ls, params)

    @server.feature(
        types.TEXT_DOCUMENT_DIAGNOSTIC,
        types.DiagnosticOptions(identifier="metagpt-lsp", inter_file_dependencies=False,
                                workspace_diagnostics=False),
    )
    def _diagnostic(ls: MetagptLanguageServer,
                    params: types.DocumentDiagnosticParams) -> types.DocumentDiagnosticReport:
        return text_sync.pull(ls, params)

    return server

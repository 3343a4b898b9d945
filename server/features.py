"""The one place that registers LSP features: each handler is a thin call into the module that owns the idea."""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from . import code_actions, configuration, info_commands, inline_completion, text_sync
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

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def _did_save(ls: MetagptLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        text_sync.did_save(ls, params)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=code_actions.ACTION_KINDS, resolve_provider=True))
    def _code_action(ls: MetagptLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return code_actions.list_actions(ls, params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def _code_action_resolve(ls: MetagptLanguageServer, action: types.CodeAction) -> types.CodeAction:
        return await code_actions.resolve_action(ls, action)

    @server.command(code_actions.FIX_COMMAND)
    def _fix(ls: MetagptLanguageServer, data: Any) -> dict[str, Any]:
        return code_actions.execute_action(ls, {**data, "action": "fix"})

    @server.command(code_actions.GENERATE_COMMAND)
    def _generate(ls: MetagptLanguageServer, data: Any) -> dict[str, Any]:
        return code_actions.execute_action(ls, {**data, "action": "generate"})

    @server.command(code_actions.REVIEW_COMMAND)
    def _review(ls: MetagptLanguageServer, data: Any) -> dict[str, Any]:
        return code_actions.execute_action(ls, {**data, "action": "review"})

    @server.command(code_actions.REVIEW_FILE_COMMAND)
    async def _review_file(ls: MetagptLanguageServer, data: Any) -> int:
        return await code_actions.review_file(ls, data)

    @server.command(info_commands.STATUS_COMMAND)
    def _status(ls: MetagptLanguageServer, *_args: Any) -> dict[str, Any]:
        return info_commands.status(ls)

    @server.command(info_commands.TRACE_COMMAND)
    def _trace(ls: MetagptLanguageServer, *_args: Any) -> str:
        return info_commands.trace(ls)

    @server.command(info_commands.TEAM_COMMAND)
    def _team(ls: MetagptLanguageServer, *_args: Any) -> dict[str, str]:
        return info_commands.team_graph(ls)

    @server.command(info_commands.CLEAR_CACHE_COMMAND)
    def _clear_cache(ls: MetagptLanguageServer, *_args: Any) -> int:
        return info_commands.clear_review_cache(ls)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def _inline(ls: MetagptLanguageServer,
                      params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
        return await inline_completion.inline_completion(ls, params)

    @server.feature(inline_completion.FALLBACK_METHOD)
    async def _inline_fallback(ls: MetagptLanguageServer, params: Any) -> Any:
        return await inline_completion.fallback_inline_completion(ls, params)

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def _progress_cancel(ls: MetagptLanguageServer, params: types.WorkDoneProgressCancelParams) -> None:
        ls.progress_registry.cancel(params.token)

    @server.feature(types.SHUTDOWN)
    async def _shutdown(ls: MetagptLanguageServer, *_args: Any) -> None:
        await ls.command_work.close()
        await ls.team_host.close()

    return server

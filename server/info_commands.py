"""``workspace/executeCommand`` commands that show the user what the team is doing (no edits here).

- ``metagpt.status``: endpoint, model, tasks in flight, tokens spent, review cache;
- ``metagpt.trace``: every message of the last task, as text;
- ``metagpt.team``: the cooperation graph (text and Mermaid);
- ``metagpt.clearReviewCache``: forget remembered reviews, so the next save reviews afresh.

Each returns its text (for scripts and tests) and shows it in the editor's log; a one-line summary pops up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsprotocol import types

if TYPE_CHECKING:
    from .language_server import MetagptLanguageServer

STATUS_COMMAND = "metagpt.status"
TRACE_COMMAND = "metagpt.trace"
TEAM_COMMAND = "metagpt.team"
CLEAR_CACHE_COMMAND = "metagpt.clearReviewCache"


def _show(server: MetagptLanguageServer, summary: str, details: str) -> None:
    server.window_log_message(types.LogMessageParams(type=types.MessageType.Info, message=details))
    server.window_show_message(types.ShowMessageParams(type=types.MessageType.Info, message=summary))


def status(server: MetagptLanguageServer) -> dict[str, Any]:
    from metagpt_lsp.agents.llm import resolve_endpoint

    team = server.team_host.active
    endpoint = server.team_host.endpoint or resolve_endpoint(server.settings.llm)
    usage = team.llm.total_usage if team is not None else None
    broker = team.broker.statistics() if team is not None else None
    report = {
        "version": server.version,
        "endpoint": "embedded local model" if endpoint.embedded else endpoint.base_url,
        "model": endpoint.model,
        "apiKey": "set" if endpoint.api_key else "not set",
        "teamStarted": team is not None,
        "tasksInFlight": len(server.document_tasks.in_flight()) + (broker.tasks_in_flight if broker else 0),
        "promptTokens": usage.prompt_tokens if usage else 0,
        "completionTokens": usage.completion_tokens if usage else 0,
        "requests": usage.requests if usage else 0,
        "cacheHits": usage.cache_hits if usage else 0,
        "openDocuments": len(server.documents),
        "diagnostics": "pull" if server.pull_diagnostics else "push",
    }
    details = "\n".join(f"{key}: {value}" for key, value in report.items())
    _show(server, f"metagpt-lsp: {report['model']} at {report['endpoint']}, {report['tasksInFlight']} task(s) in "
                  f"flight, {report['promptTokens'] + report['completionTokens']} tokens spent", details)
    return report


def trace(server: MetagptLanguageServer) -> str:
    team = server.team_host.active
    text = team.last_trace() if team is not None else "no task has run yet"
    _show(server, "metagpt-lsp: the last task's trace is in the log", text)
    return text


def team_graph(server: MetagptLanguageServer) -> dict[str, str]:
    from metagpt_lsp.agents.team import CooperationGraph

    team = server.team_host.active
    graph = team.graph if team is not None else CooperationGraph.default()
    result = {"text": graph.render_text(), "mermaid": graph.render_mermaid()}
    _show(server, "metagpt-lsp: the cooperation graph is in the log", result["text"])
    return result


def clear_review_cache(server: MetagptLanguageServer) -> int:
    from metagpt_lsp.agents.team import ReviewCache

    cache = server.team_host.review_cache or ReviewCache()
    cleared = cache.clear()
    team = server.team_host.active
    if team is not None:  # identical review prompts would otherwise be answered from the LLM client's memory
        team.llm.forget_replies()
    server.window_show_message(types.ShowMessageParams(
        type=types.MessageType.Info, message=f"metagpt-lsp: forgot {cleared} remembered review(s)"))
    return cleared

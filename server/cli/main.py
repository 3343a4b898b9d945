"""The ``metagpt-lsp`` command: serve LSP over stdio (the default), TCP or WebSocket, or run a tool command.

Imports are deferred to the branch that needs them so that ``--version`` is instant and the server answers
``initialize`` without loading openai, git or grammars nobody has asked for yet.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, BinaryIO, cast


def build_parser() -> argparse.ArgumentParser:
    from ..version import __version__

    parser = argparse.ArgumentParser(
        prog="metagpt-lsp",
        description="A language server where a team of LLM agents (generation, diagnosis, review) works for you.",
    )
    parser.add_argument("--version", action="version", version=f"metagpt-lsp {__version__}")
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true", help="serve over stdin/stdout (the default)")
    transport.add_argument("--tcp", action="store_true", help="serve over TCP on --host:--port")
    transport.add_argument("--ws", action="store_true", help="serve over WebSocket on --host:--port")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind with --tcp/--ws (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2087, help="port to bind with --tcp/--ws (default 2087)")
    parser.add_argument("--log-level", choices=["error", "warning", "info", "debug"], default="info")
    parser.add_argument("--log-file", help="also write the log to this file")

    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser(
        "check", help="check files through the real server over LSP and print its findings",
        description="Start the language server over a pipe, open each file in it and print the diagnostics it "
                    "publishes, including the agent team's review of what changed since HEAD. Exits 1 when findings "
                    "remain, 2 when a file could not be checked.")
    check.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to check")
    check.add_argument("--fix", action="store_true",
                       help="ask the team to explain and fix each finding; print the fixes as a unified diff")
    check.add_argument("--apply", action="store_true", help="with --fix: write the fixes to the files")
    check.add_argument("--all", action="store_true", dest="review_all",
                       help="review every function and class, not only what changed since HEAD")
    check.add_argument("--timeout", type=float, default=600.0,
                       help="seconds to wait for one answer of the server; with the batch engine, for one file's "
                            "task (default 600)")
    batch = check.add_argument_group(
        "whole repositories", "any of these runs the files as tasks of the batch engine: the agent team as a "
        "library on Dask workers (pip install 'metagpt-lsp[distributed]' for --jobs N > 1 and --scheduler)")
    batch.add_argument("--jobs", type=int, default=1, metavar="N",
                       help="worker processes on this machine (a Dask LocalCluster); 1: no Dask (default)")
    batch.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on an existing Dask cluster")
    batch.add_argument("--endpoint", action="append", default=[], metavar="URL",
                       help="an OpenAI-compatible base URL; repeat it to share the files out over several")
    batch.add_argument("--model", help="the model to ask for at the endpoints (like llm.model)")
    batch.add_argument("--settings", metavar="FILE.json", help="settings JSON whose llm.endpoints/llm.model to use")
    batch.add_argument("--results", metavar="FILE.jsonl",
                       help="append each file's result here as it finishes; a rerun skips what the file holds")
    batch.add_argument("--diff", metavar="REF",
                       help="pull-request mode: review only the units that changed between REF and the working tree")
    batch.add_argument("--format", choices=["text", "json", "sarif"], default="text", dest="output_format",
                       help="findings as text lines (default), one JSON document, or SARIF 2.1.0")
    batch.add_argument("--retries", type=int, default=2, help="tries again for a file whose task failed (default 2)")
    team = commands.add_parser(
        "team", help="print the agents' cooperation graph (agents, weighted edges, round bounds)",
        description="Print the cooperation graph the server would use, with the team.graph override of a settings "
                    "file applied. Exits 2 when the override is invalid (its problems are listed).")
    team.add_argument("--mermaid", action="store_true", help="print a Mermaid diagram instead of text")
    team.add_argument("--settings", metavar="FILE.json", help="editor settings JSON whose team.graph to apply")
    doctor = commands.add_parser(
        "doctor", help="probe the LLM endpoint (or the embedded model): what works, what does not, and the fix",
        description="Probe the endpoint the server would use: reachable, models, chat, streaming, structured "
                    "output, context length, latency (and, for the embedded model, its installation and cold start). "
                    "Exits 1 when a check fails.")
    doctor.add_argument("--settings", metavar="FILE.json", help="editor settings JSON whose llm branch to use")
    doctor.add_argument("--base-url", help="probe this OpenAI-compatible endpoint instead (like llm.baseUrl)")
    doctor.add_argument("--model", help="the model to ask for (like llm.model)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "check":
        from .check import run_check

        return run_check(args.paths, timeout=args.timeout, log_level=args.log_level, fix=args.fix, apply=args.apply,
                         review_all=args.review_all, batch=batch_options(args))
    if args.command == "team":
        from .team_graph import run_team

        return run_team(args.settings, mermaid=args.mermaid)
    if args.command == "doctor":
        from .doctor import run_doctor

        return run_doctor(args.settings, base_url=args.base_url, model=args.model)
    if args.port <= 0 or args.port > 65535:
        parser.error(f"--port must be between 1 and 65535, not {args.port}")
    return serve(args)


def batch_options(args: argparse.Namespace) -> Any:
    """The batch engine's options when any of its flags is given; None for today's check over LSP."""
    if not (args.jobs > 1 or args.scheduler or args.endpoint or args.results or args.diff or args.settings
            or args.model or args.output_format != "text"):
        return None
    from .check_batch import BatchOptions

    return BatchOptions(jobs=args.jobs, scheduler=args.scheduler, endpoints=args.endpoint, model=args.model,
                        settings=args.settings, results=args.results, diff=args.diff,
                        output_format=args.output_format, fix=args.fix, apply=args.apply, review_all=args.review_all,
                        task_timeout_s=args.timeout, retries=args.retries)


def serve(args: argparse.Namespace) -> int:
    from .. import log_forwarding

    log_forwarding.configure(args.log_level, args.log_file)
    from ..features import create_server

    server = create_server()
    if args.tcp:
        server.start_tcp(args.host, args.port)
    elif args.ws:
        server.start_ws(args.host, args.port)
    else:
        from ..json_rpc_framing import GuardedStdin

        server.start_io(cast(BinaryIO, GuardedStdin(sys.stdin.buffer)))  # pygls reads only readline/read
    return getattr(server.protocol, "exit_code", 0)  # 1 after exit without shutdown, as LSP says


if __name__ == "__main__":
    sys.exit(main())

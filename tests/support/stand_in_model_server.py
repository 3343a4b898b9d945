"""A tiny OpenAI-compatible server run as a separate process: the stand-in for llama-cpp-python's server in tests.

It takes the same flags as ``python -m llama_cpp.server`` (``--host``, ``--port``, ``--model_alias``) plus scripted
behaviour: ``--ready-after S`` waits before listening (a slow model load), ``--exit-with CODE`` writes an error to
stderr and exits (a bad model file). It prints its pid to stderr and a line to stdout, so tests can check where the
child's output goes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model_alias", default="stand-in")
    parser.add_argument("--ready-after", type=float, default=0.0)
    parser.add_argument("--exit-with", type=int, default=None)
    args, _ = parser.parse_known_args()
    print(f"stand-in pid {os.getpid()}", file=sys.stderr, flush=True)
    print("stand-in says hello on stdout", flush=True)
    if args.exit_with is not None:
        print("error: failed to load model from file 'missing.gguf'", file=sys.stderr, flush=True)
        sys.exit(args.exit_with)
    time.sleep(args.ready_after)  # scripted latency: the model loading
    alias = args.model_alias

    class Handler(BaseHTTPRequestHandler):
        def _send(self, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send({"object": "list", "data": [{"id": alias, "object": "model", "owned_by": "me"}]})
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                self.send_error(404)
                return
            self._send({"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                        "model": request.get("model", alias),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": f"stand-in {os.getpid()} answers"}}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}})

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()

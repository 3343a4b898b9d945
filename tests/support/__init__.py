"""What the tests and benchmarks share, importable as ``metagpt_lsp.testing`` (pyproject maps this folder there, so
benchmarks need no ``sys.path`` edits):

- ``scripted_llm``: an OpenAI-compatible server on 127.0.0.1 with fixed replies, latency and faults;
- ``openai_wire``: the bytes of its answers (bodies, SSE chunks, errors);
- ``lsp_support`` and ``scripted_editor``: pytest-lsp editor clients that record what the server sends, apply its
  edits and wait for events; a git project in a temp dir;
- ``raw_jsonrpc``: the server over a raw pipe, frame by frame, for malformed input;
- ``sample_module``: the Python module most tests edit;
- ``stand_in_model_server``: a stand-in for llama-cpp-python's server, for the embedded-model plumbing.
"""

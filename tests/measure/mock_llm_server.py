#!/usr/bin/python3
"""A stand-in LLM server for testing `hearth bench --server` without a model or a network: it
speaks Ollama's POST /api/generate (NDJSON) and OpenAI's POST /v1/completions (server-sent
events), both streamed with chunked transfer encoding as Ollama and llama-server stream, plus
GET /api/tags and GET /v1/models. Timing is under control: the first token comes
--first-token-ms after the request, each next one --token-ms after the last. Each line is
written in two HTTP chunks, split mid-line, so the client's parser sees lines cut in two. The
headers and an empty first piece (no text) go out at once, so a client that times the headers
instead of the first text is caught.

Failures on demand: every --fail-every K-th generation request (the K-th, 2K-th, ...) either
answers HTTP 500 with a JSON error body (--fail-mode http500) or sends one token and drops the
connection mid-stream (--fail-mode drop).

Requests are checked as a strict server would: the model must be --model, streaming on,
temperature 0, num_predict / max_tokens given; anything else is HTTP 400. GET /mock/stats tells
the test what happened: generation requests, the most in flight at once, distinct prompts.

Binds 127.0.0.1 on a free port and prints "port N" as its first line of stdout.
Usage: mock_llm_server.py [--first-token-ms MS] [--token-ms MS] [--fail-every K] [--fail-mode http500|drop]
                          [--no-usage] [--model NAME]
"""
import argparse
import http.server
import json
import socket
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--first-token-ms", type=float, default=100)
parser.add_argument("--token-ms", type=float, default=5)
parser.add_argument("--fail-every", type=int, default=0)
parser.add_argument("--fail-mode", choices=["http500", "drop"], default="http500")
parser.add_argument("--no-usage", action="store_true", help="openai: never send token counts")
parser.add_argument("--model", default="mock-1b")
args = parser.parse_args()

lock = threading.Lock()
stats = {"generation_requests": 0, "in_flight": 0, "max_in_flight": 0, "prompts": set(), "bad_requests": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def send_json(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def line_in_two_chunks(self, line):
        data = line.encode()
        self.chunk(data[:len(data) // 2])
        self.chunk(data[len(data) // 2:])

    def do_GET(self):
        if self.path == "/api/tags":
            self.send_json(200, {"models": [{"name": args.model, "model": args.model, "size": 1}]})
        elif self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": args.model, "object": "model"}]})
        elif self.path == "/mock/stats":
            with lock:
                self.send_json(200, {k: (len(v) if isinstance(v, set) else v) for k, v in stats.items()})
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ollama = self.path == "/api/generate"
        if not ollama and self.path != "/v1/completions":
            self.send_json(404, {"error": f"no route {self.path}"})
            return
        options = body.get("options", {}) if ollama else body
        tokens = options.get("num_predict" if ollama else "max_tokens")
        problem = None
        if body.get("model") != args.model:
            self.send_json(404, {"error": f"model '{body.get('model')}' not found"} if ollama else
                           {"error": {"message": f"model '{body.get('model')}' not found", "type": "not_found"}})
            return
        if body.get("stream") is not True:
            problem = "stream must be true"
        elif options.get("temperature") != 0:
            problem = "temperature must be 0 (greedy)"
        elif not isinstance(tokens, int) or tokens < 1:
            problem = "no token count"
        elif not ollama and body.get("stream_options", {}).get("include_usage") is not True:
            problem = "stream_options.include_usage must be true"
        elif ollama and body.get("raw") is not True:
            problem = "raw must be true"
        if problem:
            with lock:
                stats["bad_requests"] += 1
            self.send_json(400, {"error": problem})
            return
        prompt = body["prompt"]
        with lock:
            stats["generation_requests"] += 1
            number = stats["generation_requests"]
            stats["prompts"].add(prompt)
            stats["in_flight"] += 1
            stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        self.left = False
        try:
            failing = args.fail_every > 0 and number % args.fail_every == 0
            if failing and args.fail_mode == "http500":
                message = f"mock failure on request {number}"
                self.leave()
                self.send_json(500, {"error": message} if ollama else {"error": {"message": message, "type": "server_error"}})
                return
            self.stream(ollama, prompt, tokens, drop_after_first=failing)
        finally:
            self.leave()

    # The request stops counting as in flight before its last bytes go out: the client may send
    # its next request as soon as it reads them, before this thread runs again.
    def leave(self):
        with lock:
            if not self.left:
                stats["in_flight"] -= 1
                self.left = True

    def stream(self, ollama, prompt, tokens, drop_after_first):
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson" if ollama else "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        prompt_tokens = len(prompt.split())

        def piece(text, final=False):
            if ollama:
                message = {"model": args.model, "response": text, "done": final}
                if final:
                    message.update(done_reason="length", eval_count=tokens, prompt_eval_count=prompt_tokens)
                return json.dumps(message) + "\n"
            message = {"object": "text_completion", "model": args.model,
                       "choices": [{"text": text, "index": 0, "finish_reason": "length" if final else None}]}
            return "data: " + json.dumps(message) + "\n\n"

        self.line_in_two_chunks(piece(""))  # no text yet: not the first byte of the answer
        start = time.monotonic()
        for i in range(tokens):
            due = start + (args.first_token_ms + i * args.token_ms) / 1000
            time.sleep(max(0.0, due - time.monotonic()))
            self.line_in_two_chunks(piece(f" tok{i}"))
            if drop_after_first:
                self.leave()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
        self.leave()
        self.line_in_two_chunks(piece("", final=True))
        if not ollama:
            if not args.no_usage:
                usage = {"object": "text_completion", "choices": [],
                         "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": tokens,
                                   "total_tokens": prompt_tokens + tokens}}
                self.line_in_two_chunks("data: " + json.dumps(usage) + "\n\n")
            self.line_in_two_chunks("data: [DONE]\n\n")
        self.chunk(b"")


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"port {server.server_address[1]}", flush=True)
server.serve_forever()

#!/usr/bin/python3
"""`hearth bench --server` against mock_llm_server.py, whose timing and failures are known, with
both APIs: what the report says must be what the mock did.

Timing tolerances. The mock sends the first token FIRST ms after it reads the request and token i
at FIRST + i·STEP ms (an absolute schedule, so its sleeps do not add up). So:
 - TTFB can never be below FIRST; above it by connecting, the mock's thread start and scheduling
   on a small machine that ctest -j shares with other tests: at most TTFB_SLACK_MS for the median.
 - one stream decodes (n − 1) tokens in (n − 1)·STEP: 1000 / STEP tok/s, a little less when a
   chunk comes late, more only when two arrive together: within −25 % / +15 %.
 - the mock serves C requests in parallel, each taking FIRST + (n − 1)·STEP, so a level of R
   requests (a multiple of C) generates R·n tokens in R / C such rounds: aggregate tok/s is
   C·n / (FIRST + (n − 1)·STEP) at best; requests start a little late after each round, so it
   may fall short by 30 %, never exceed it by more than 5 %.
Token counts, request counts and failures are exact.
Usage: server_bench_vs_mock.py HEARTH
"""
import json
import os
import re
import socket
import subprocess
import sys
import urllib.request

hearth = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
mock_script = os.path.join(here, "mock_llm_server.py")
FIRST, STEP, TOKENS, WORDS = 150, 10, 20, 40
TTFB_SLACK_MS = 60
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)


class Mock:
    def __init__(self, *flags):
        self.process = subprocess.Popen([sys.executable, mock_script, "--first-token-ms", str(FIRST), "--token-ms",
                                         str(STEP), *flags], stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline().split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self):
        with urllib.request.urlopen(self.url + "/mock/stats", timeout=5) as answer:
            return json.load(answer)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.process.kill()
        self.process.wait()


def bench(url, *flags):
    """Runs hearth bench --server; returns (exit code, parsed JSON or None, stdout, stderr)."""
    run = subprocess.run([hearth, "bench", "--server", url, "--prompt-tokens", str(WORDS), "--gen-tokens", str(TOKENS),
                          *flags], capture_output=True, text=True, timeout=60)
    report = None
    if "-o" in flags and flags[flags.index("-o") + 1] == "json" and run.stdout.strip():
        report = json.loads(run.stdout)
    return run.returncode, report, run.stdout, run.stderr


def check_timing(level, name):
    request_ms = FIRST + (TOKENS - 1) * STEP
    c = level["concurrency"]
    check(FIRST <= level["ttfb_ms_p50"] <= FIRST + TTFB_SLACK_MS,
          f"{name} c={c}: TTFB p50 {level['ttfb_ms_p50']:.1f} ms, the mock sends the first token at {FIRST} ms")
    check(level["ttfb_ms_p50"] <= level["ttfb_ms_p95"] <= level["ttfb_ms_max"], f"{name} c={c}: p50 <= p95 <= max")
    stream = 1000 / STEP
    check(0.75 * stream <= level["stream_tokens_per_second_mean"] <= 1.15 * stream,
          f"{name} c={c}: {level['stream_tokens_per_second_mean']:.1f} tok/s per stream, the mock sends {stream:.0f}")
    best = c * TOKENS * 1000 / request_ms
    check(0.70 * best <= level["aggregate_tokens_per_second"] <= 1.05 * best,
          f"{name} c={c}: aggregate {level['aggregate_tokens_per_second']:.1f} tok/s, at best {best:.1f}")


def check_exact_counts(level, name, prompt_tokens_reported=True):
    c = level["concurrency"]
    samples = level["samples"]
    check(len(samples) == level["requests"] == level["requests_ok"], f"{name} c={c}: every request succeeds")
    check(all(s["generated_tokens"] == TOKENS for s in samples), f"{name} c={c}: {TOKENS} tokens counted per request")
    check(level["generated_tokens_total"] == TOKENS * level["requests"], f"{name} c={c}: generated_tokens_total")
    expected_prompt = WORDS if prompt_tokens_reported else None
    check(all(s["prompt_tokens_server"] == expected_prompt for s in samples),
          f"{name} c={c}: the server's prompt count {[s['prompt_tokens_server'] for s in samples]}, "
          f"expected {expected_prompt}")


# Ollama's API: levels 1 and 4 with the default request count (2 × C, at least 4), a warm-up first.
with Mock() as mock:
    plot = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"server-bench-{os.getpid()}.svg")
    rc, report, _, err = bench(mock.url, "--concurrency", "1,4", "-o", "json", "--plot", plot)
    check(rc == 0, f"ollama: exit code {rc}: {err}")
    check(report["schema"] == "hearth-bench-server/1", "schema name")
    check(report["server"] == {"url": mock.url, "api": "ollama", "model": "mock-1b", "model_from_server": True},
          f"server block {report['server']}")
    check([level["concurrency"] for level in report["levels"]] == [1, 4], "one level per concurrency")
    check([level["requests"] for level in report["levels"]] == [4, 8], "default requests: 2 × C, at least 4")
    for level in report["levels"]:
        check_exact_counts(level, "ollama")
        check_timing(level, "ollama")
    one, four = (level["aggregate_tokens_per_second"] for level in report["levels"])
    check(3.0 <= four / one <= 4.2, f"ollama: aggregate at c=4 is {four / one:.2f}× c=1's; the mock serves 4 at once")
    stats = mock.stats()
    check(stats["generation_requests"] == 1 + 4 + 8, f"warm-up + 12 timed requests, the mock saw {stats}")
    check(stats["prompts"] == stats["generation_requests"], f"every prompt distinct: {stats}")
    check(stats["max_in_flight"] == 4, f"at most and at least 4 in flight: {stats}")
    check(stats["bad_requests"] == 0, f"requests as the API wants them: {stats}")
    with open(plot) as f:
        svg = f.read()
    os.remove(plot)
    check(svg.count('<polyline class="series"') == 2, "plot: an aggregate and a per-stream line")

# OpenAI's API (SSE), usage reported; then without usage: tokens counted from the text chunks.
with Mock() as mock:
    rc, report, _, err = bench(mock.url, "--api", "openai", "--concurrency", "2", "-o", "json", "--no-warmup")
    check(rc == 0, f"openai: exit code {rc}: {err}")
    level = report["levels"][0]
    check(report["server"]["api"] == "openai" and report["warmup"] is False, "openai: api and warm-up recorded")
    check_exact_counts(level, "openai")
    check_timing(level, "openai")
    check(mock.stats()["generation_requests"] == 4, "no warm-up request with --no-warmup")
with Mock("--no-usage") as mock:
    rc, report, _, err = bench(mock.url, "--api", "openai", "--concurrency", "2", "--requests", "2", "-o", "json",
                               "--no-warmup")
    check(rc == 0, f"openai without usage: exit code {rc}: {err}")
    check_exact_counts(report["levels"][0], "openai without usage", prompt_tokens_reported=False)
    rc, _, out, err = bench(mock.url, "--api", "openai", "--concurrency", "1,2", "--requests", "2", "-o", "csv",
                            "--no-warmup")
    lines = out.splitlines()
    check(rc == 0 and len(lines) == 3 and lines[0].startswith("hearth_version,"), f"csv: a header and 2 lines: {out}")
    check(lines[1].split(",")[7] == "1" and lines[2].split(",")[7] == "2", f"csv: the concurrency column: {out}")

# Failures are counted exactly and do not stop the run: every 3rd request answers HTTP 500, or
# (every 2nd) drops the connection after its first token. No timing here, so a fast mock.
for mode, every, api in (("http500", 3, "ollama"), ("http500", 3, "openai"), ("drop", 2, "ollama"),
                         ("drop", 2, "openai")):
    with Mock("--first-token-ms", "10", "--token-ms", "1", "--fail-every", str(every), "--fail-mode", mode) as mock:
        rc, report, _, err = bench(mock.url, "--api", api, "--concurrency", "2", "--requests", "6", "-o", "json",
                                   "--no-warmup")
        name = f"{mode} {api}"
        check(rc == 0, f"{name}: exit code {rc}: {err}")
        level = report["levels"][0]
        expected_failed = 6 // every
        check(level["requests_failed"] == expected_failed and level["requests_ok"] == 6 - expected_failed,
              f"{name}: {level['requests_failed']} failed, expected {expected_failed}")
        pattern = r"HTTP 500: mock failure on request \d+" if mode == "http500" else r"connection broke"
        errors = [s["error"] for s in level["samples"] if not s["ok"]]
        check(len(errors) == expected_failed and all(re.search(pattern, e) for e in errors),
              f"{name}: errors {errors}")
        check(re.search(pattern, level["first_error"] or ""), f"{name}: first_error {level['first_error']}")
        check(level["generated_tokens_total"] == TOKENS * (6 - expected_failed), f"{name}: only finished requests count")

# A warm-up that fails after the answer began does not stop the run (a server's trouble with one
# generation is measured in the levels); here every request fails so, and the exit code says so.
with Mock("--first-token-ms", "10", "--token-ms", "1", "--fail-every", "1", "--fail-mode", "drop") as mock:
    rc, report, _, err = bench(mock.url, "--concurrency", "1", "-o", "json")
    check(rc != 0 and "going on" in err and "every request" in err, f"warm-up broken mid-stream: {rc}, {err}")
    check("connection broke" in (report["warmup_error"] or ""), f"warm-up error recorded: {report['warmup_error']}")
    check(report["levels"][0]["requests_failed"] == 4, "every request of the level failed")

# A request that outlives --timeout fails as a timeout; when all do, the exit code says so.
with Mock("--first-token-ms", "5000") as mock:
    rc, report, _, err = bench(mock.url, "--concurrency", "2", "--requests", "2", "--timeout", "0.5", "-o", "json",
                               "--no-warmup")
    check(rc != 0 and "every request" in err, f"timeout: exit code {rc}, {err}")
    level = report["levels"][0]
    check(level["requests_failed"] == 2 and all("timed out" in s["error"] for s in level["samples"]),
          f"timeout: {level['samples']}")
    check(level["wall_seconds"] < 2, f"timeout: the level took {level['wall_seconds']} s with --timeout 0.5")

    # A model the server does not have: the warm-up request fails with the server's message.
    rc, _, _, err = bench(mock.url, "--model-name", "nope", "--concurrency", "1")
    check(rc != 0 and "model 'nope' not found" in err, f"unknown model: exit code {rc}, {err}")

# Nothing listening: one clear message naming the URL, a nonzero exit code, no hang.
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    closed_port = s.getsockname()[1]
url = f"http://127.0.0.1:{closed_port}"
rc, _, out, err = bench(url, "--concurrency", "1")
check(rc != 0 and url in err and "cannot reach" in err and out == "", f"refused: exit code {rc}, {err!r}")
rc, _, _, err = bench(f"https://127.0.0.1:{closed_port}")
check(rc != 0 and "https is not supported" in err, f"https: exit code {rc}, {err!r}")

if failures:
    sys.exit(f"{len(failures)} checks failed")
print("hearth bench --server agrees with the mock server")

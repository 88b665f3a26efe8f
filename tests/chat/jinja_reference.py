#!/usr/bin/python3
"""Renders Jinja templates the way Hugging Face transformers renders chat templates, as the
reference the chat tests compare hearth's engine against byte for byte.

The environment is transformers' `_compile_jinja_template` (chat_template_utils.py):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
extensions=[loopcontrols]), a `tojson` filter that is json.dumps without ASCII escaping, and
the globals raise_exception (raises TemplateError) and strftime_now. strftime_now reads a
fixed clock here (2024-07-26 09:30:05) so that results are reproducible.

Usage: jinja_reference.py REQUESTS.json
REQUESTS.json is a list of {"template": str, "variables": {...}}. Prints a JSON list with one
entry per request: {"output": str} or {"error": str, "raised": bool} where raised means the
template called raise_exception.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXED_NOW = datetime(2024, 7, 26, 9, 30, 5)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return FIXED_NOW.strftime(format)


def make_environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, request):
    try:
        template = env.from_string(request["template"])
        return {"output": template.render(**request.get("variables", {}))}
    except Exception as error:  # every failure is a result to compare, not a crash
        raised = type(error) is jinja2.exceptions.TemplateError
        return {"error": f"{type(error).__name__}: {error}", "raised": raised}


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        requests = json.load(f)
    env = make_environment()
    results = [render(env, request) for request in requests]
    sys.stdout.write(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()

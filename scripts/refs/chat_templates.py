"""Expected renderings of the chat-template fixtures, made with Python's jinja2 the way
`transformers` renders chat templates (docs/peers.md).

Renders every kernels/tests/data/chat_templates/*.jinja with each conversation below, in an
environment like transformers' (`trim_blocks`, `lstrip_blocks`, loop controls,
`raise_exception`, `tojson` as `json.dumps(ensure_ascii=False)`), and writes
kernels/tests/data/chat_templates/expected.json, which is committed:

  {"jinja2": VERSION, "cases": [{"template", "bos_token", "eos_token", "conversation",
   "messages", "add_generation_prompt", "text" | "error"}]}

kernels/tests/chat_template.rs renders the same cases with minijinja and compares. Rerun this
after changing a template or a conversation.

Usage: python scripts/refs/chat_templates.py
"""

from __future__ import annotations

# This folder goes last on sys.path, so tokenize.py here cannot shadow the standard module.
import os as _os  # noqa: E402
import sys as _sys  # noqa: E402

_HERE = _os.path.dirname(_os.path.abspath(__file__))
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _HERE] + [_HERE]

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import jinja2  # noqa: E402
import jinja2.ext  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

HERE = Path(__file__).resolve().parents[2] / "kernels" / "tests" / "data" / "chat_templates"
TOKENS = {
    "smollm2": ("<|im_start|>", "<|im_end|>"),
    "llama3": ("<|begin_of_text|>", "<|eot_id|>"),
    "pycompat": ("<s>", "</s>"),
}
CONVERSATIONS = {
    "one_user": [{"role": "user", "content": "Hello!"}],
    "system_and_turns": [
        {"role": "system", "content": "  be brief.  "},
        {"role": "user", "content": "What's 2+2?"},
        {"role": "assistant", "content": " 4. "},
        {"role": "user", "content": "/say 日本語 😀 \"quoted\"\n<b>&</b>"},
    ],
    "not_alternating": [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
    ],
}


def raise_exception(message: str):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def main() -> None:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    cases = []
    for name, (bos, eos) in TOKENS.items():
        template = env.from_string((HERE / f"{name}.jinja").read_text(encoding="utf-8"))
        for conv, messages in CONVERSATIONS.items():
            for gen in (True, False):
                case = {"template": name, "bos_token": bos, "eos_token": eos,
                        "conversation": conv, "messages": messages,
                        "add_generation_prompt": gen}
                try:
                    case["text"] = template.render(messages=messages, add_generation_prompt=gen,
                                                   bos_token=bos, eos_token=eos)
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                cases.append(case)
    out = HERE / "expected.json"
    out.write_text(json.dumps({"jinja2": jinja2.__version__, "cases": cases},
                              ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"chat_templates: wrote {out} ({len(cases)} cases)")


if __name__ == "__main__":
    main()

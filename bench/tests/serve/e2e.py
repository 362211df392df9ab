"""End-to-end checks of a running `fastlibra serve` with the official `openai` client, curl and
prometheus_client. Usage: python e2e.py BASE_URL BASE_MODEL ADAPTER_DIR

The server must serve adapters `a` and `b`. Prints one line per check; exits non-zero on the
first failure.
"""

import json
import subprocess
import sys

import openai
from prometheus_client.parser import text_string_to_metric_families

url, base, adapter_dir = sys.argv[1:4]
client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
sent = {"prompt": 0, "completion": 0, "requests": 0}


def count(usage):
    sent["prompt"] += usage.prompt_tokens
    sent["completion"] += usage.completion_tokens
    sent["requests"] += 1


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail else ""), flush=True)
    if not ok:
        sys.exit(1)


# Completions and chat, plain and streamed.
r = client.completions.create(model="a", prompt="The capital of France is", max_tokens=8, temperature=0)
count(r.usage)
check("completion", r.choices[0].finish_reason in ("stop", "length") and r.choices[0].text, repr(r.choices[0].text))
r = client.chat.completions.create(model="b", messages=[{"role": "user", "content": "Say hi"}], max_tokens=8, seed=3)
count(r.usage)
check("chat", bool(r.choices[0].message.content), repr(r.choices[0].message.content))
for kind in ("completions", "chat"):
    if kind == "completions":
        stream = client.completions.create(model="a", prompt="One, two,", max_tokens=6, stream=True,
                                           stream_options={"include_usage": True}, temperature=0)
    else:
        stream = client.chat.completions.create(model=base, messages=[{"role": "user", "content": "Count"}],
                                                max_tokens=6, stream=True, stream_options={"include_usage": True},
                                                temperature=0)
    parts, usage, finish = [], None, None
    for chunk in stream:
        if chunk.choices:
            c = chunk.choices[0]
            parts.append(c.text if kind == "completions" else (c.delta.content or ""))
            finish = c.finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    count(usage)
    # A stream ends at max_tokens ("length", exactly 6 tokens) or earlier at an end-of-turn
    # token ("stop"); either way the usage chunk reports what was generated.
    n = usage.completion_tokens if usage is not None else 0
    ended = (finish == "length" and n == 6) or (finish == "stop" and 1 <= n <= 6)
    check(f"{kind} streamed", ended and "".join(parts), repr(("".join(parts), finish, n)))

# Same seed, same text.
texts = []
for _ in range(2):
    r = client.completions.create(model="b", prompt="Once upon", max_tokens=10, seed=42)
    count(r.usage)
    texts.append(r.choices[0].text)
check("same seed same text", texts[0] == texts[1], repr(texts[0]))

# /v1/models, then load, use, reload, unload an adapter.
ids = {m.id: m for m in client.models.list().data}
check("models", {base, "a", "b"} <= set(ids), sorted(ids))
curl = ["curl", "-s", "-o", "/dev/stderr", "-w", "%{http_code}", "-H", "Content-Type: application/json"]
def post(path, body):
    return subprocess.run(curl + ["-d", json.dumps(body), url + path], capture_output=True, text=True)
res = post("/v1/load_lora_adapter", {"lora_name": "c", "lora_path": adapter_dir})
check("load by curl", res.stdout == "200", res.stderr)
r = client.completions.create(model="c", prompt="Hello", max_tokens=4, temperature=0)
count(r.usage)
res = post("/v1/load_lora_adapter", {"lora_name": "c", "lora_path": adapter_dir})
check("reload is a new version", res.stdout == "200" and "version 2" in res.stderr, res.stderr)
res = post("/v1/load_lora_adapter", {"lora_name": "bad", "lora_path": "/does/not/exist"})
check("bad lora_path is 400", res.stdout == "400" and '"param":"lora_path"' in res.stderr, res.stderr)
res = post("/v1/unload_lora_adapter", {"lora_name": "c"})
check("unload by curl", res.stdout == "200", res.stderr)
try:
    client.completions.create(model="c", prompt="Hello", max_tokens=4)
    check("unloaded adapter is 404", False)
except openai.NotFoundError as e:
    check("unloaded adapter is 404", e.status_code == 404)
try:
    client.completions.create(model=base, prompt="x", max_tokens=4, n=2)
    check("n=2 is 400", False)
except openai.BadRequestError as e:
    check("n=2 is 400", e.status_code == 400)

# Metrics parse, and the counters add up to what was sent.
text = subprocess.run(["curl", "-s", url + "/metrics"], capture_output=True, text=True).stdout
samples = {}
for family in text_string_to_metric_families(text):
    for s in family.samples:
        samples.setdefault(s.name, 0.0)
        samples[s.name] += s.value
check("metrics parse", "vllm:num_requests_running" in samples, f"{len(samples)} samples")
check("prompt tokens add up", samples.get("vllm:prompt_tokens_total") == sent["prompt"],
      f"{samples.get('vllm:prompt_tokens_total')} vs {sent['prompt']}")
check("generation tokens add up", samples.get("vllm:generation_tokens_total") == sent["completion"],
      f"{samples.get('vllm:generation_tokens_total')} vs {sent['completion']}")
check("request count adds up", samples.get("vllm:e2e_request_latency_seconds_count") == sent["requests"],
      f"{samples.get('vllm:e2e_request_latency_seconds_count')} vs {sent['requests']}")
check("no pins when idle", samples.get("fastlibra:pinned_hbm_pages") == 0, samples.get("fastlibra:pinned_hbm_pages"))
check("invariants hold", samples.get("fastlibra:invariant_failures_total", 0) == 0)
print("e2e: all checks passed")

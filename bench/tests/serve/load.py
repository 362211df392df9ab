"""Load test and HTTP overhead of a running `fastlibra serve` (bounded: it stops by itself).

Usage: python load.py BASE_URL PID [--clients 64] [--requests 20] [--adapters a,b,c,d]
                      [--max-tokens 16] [--rounds 2] [--light 50] [--smaps]

Round r: CLIENTS concurrent streaming clients each send REQUESTS completions, client i using
adapter i mod len(ADAPTERS); every request must complete. Reports TTFT (median, p99),
throughput (generated tokens/s), and the server's RSS (VmRSS of PID) after each round.
With --smaps, each RSS figure is split into the large anonymous mappings (the tier arenas,
the model's weights: size and resident MiB) and the rest, to tell first touch from growth.
Then LIGHT sequential requests of 32 distinct prompt tokens and max_tokens 4 on the base model
give the median TTFT through the server and the `openai` client (whose own time is included);
the front's overhead like for like is `cargo run --release -p fastlibra-serve --example
http_overhead`.
"""

import argparse
import asyncio
import statistics
import time

import openai

p = argparse.ArgumentParser()
p.add_argument("url")
p.add_argument("pid", type=int)
p.add_argument("--clients", type=int, default=64)
p.add_argument("--requests", type=int, default=20)
p.add_argument("--adapters", default="a,b,c,d")
p.add_argument("--max-tokens", type=int, default=16)
p.add_argument("--rounds", type=int, default=2)
p.add_argument("--light", type=int, default=50)
p.add_argument("--base", default="smollm2")
p.add_argument("--timeout", type=float, default=600.0)
p.add_argument("--smaps", action="store_true",
               help="after each round, split the RSS: large anonymous mappings and the rest")
args = p.parse_args()
adapters = args.adapters.split(",")


def big_mappings(pid, min_mib=64):
    """Resident MiB of each anonymous mapping of at least MIN_MIB (the tier arenas, the model's
    weights), as 'size:resident' in MiB, and the resident MiB of everything else."""
    big, rest, size, rss, anon = [], 0.0, 0, 0, False
    with open(f"/proc/{pid}/smaps") as f:
        lines = f.read().splitlines() + ["0-0 ---p 0 0:0 0"]
    for line in lines:
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            if size >= min_mib * 1024 and anon:
                big.append(f"{size / 1024:.0f}:{rss / 1024:.0f}")
            else:
                rest += rss / 1024
            size, rss, anon = 0, 0, len(head) < 6
        elif head and head[0] == "Size:":
            size = int(head[1])
        elif head and head[0] == "Rss:":
            rss = int(head[1])
    return " ".join(big), rest


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def one(client, model, prompt, max_tokens):
    start = time.perf_counter()
    ttft, tokens = None, 0
    stream = await client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens,
                                             stream=True, stream_options={"include_usage": True},
                                             temperature=0.8, seed=1)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].text and ttft is None:
            ttft = time.perf_counter() - start
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return ttft if ttft is not None else time.perf_counter() - start, tokens


async def client_loop(client, i, results):
    model = adapters[i % len(adapters)]
    for j in range(args.requests):
        results.append(await one(client, model, f"Client {i} request {j}: tell me about", args.max_tokens))


async def round_(client, r):
    results = []
    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client_loop(client, i, results) for i in range(args.clients))),
                           args.timeout)
    wall = time.perf_counter() - start
    ttfts = sorted(t for t, _ in results)
    tokens = sum(n for _, n in results)
    expected = args.clients * args.requests
    assert len(results) == expected, f"{len(results)} of {expected} requests completed"
    p99 = ttfts[min(len(ttfts) - 1, int(0.99 * len(ttfts)))]
    print(f"round {r}: {len(results)} requests completed in {wall:.1f} s; TTFT median "
          f"{statistics.median(ttfts) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms; "
          f"{tokens / wall:.1f} generated tokens/s; server RSS {rss_mib(args.pid):.1f} MiB", flush=True)
    if args.smaps:
        big, rest = big_mappings(args.pid)
        print(f"  anonymous mappings >= 64 MiB (size:resident MiB): {big}; the rest resident: "
              f"{rest:.1f} MiB", flush=True)


async def light(client):
    ttfts = []
    for k in range(args.light + 5):
        # 32 distinct token ids per request, as online_ttft sends.
        prompt = [1000 + (k * 32 + t) % 40000 for t in range(32)]
        start = time.perf_counter()
        stream = await client.completions.create(model=args.base, prompt=prompt, max_tokens=4, stream=True,
                                                 temperature=0)
        async for chunk in stream:
            if chunk.choices:
                break
        ttft = time.perf_counter() - start
        async for _ in stream:
            pass
        if k >= 5:
            ttfts.append(ttft)
    print(f"light load: TTFT through the server over {len(ttfts)} requests: median "
          f"{statistics.median(ttfts) * 1e3:.2f} ms", flush=True)


async def main():
    client = openai.AsyncOpenAI(base_url=args.url + "/v1", api_key="unused", max_retries=0,
                                timeout=args.timeout)
    print(f"server RSS before: {rss_mib(args.pid):.1f} MiB", flush=True)
    if args.smaps:
        big, rest = big_mappings(args.pid)
        print(f"  anonymous mappings >= 64 MiB (size:resident MiB): {big}; the rest resident: "
              f"{rest:.1f} MiB", flush=True)
    for r in range(1, args.rounds + 1):
        await round_(client, r)
    if args.light:
        await light(client)


asyncio.run(main())

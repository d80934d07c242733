"""Load benchmark of `alignrec serve`: cached lookups vs a bare endpoint of the same framework, in one run.

Starts three uvicorn servers on 127.0.0.1 with identical settings (one worker each):

- ``ours``: ``alignrec serve`` on a run and a store (GET /v1/users/{id}/recommendations?k=10, random users);
- ``bare``: FastAPI returning a constant answer: one real answer of ``ours`` (same shape, same size),
  serialized by FastAPI as any endpoint's return value is;
- ``bare-bytes``: FastAPI returning the same answer pre-encoded (no serialization at all: the framework's floor).

and loads them in turn with wrk (Debian's ``wrk``: C, so the client costs little CPU next to the server),
``--rounds`` interleaved times, reporting the median round of each and the server's CPU time per request.
On a machine shared with other jobs those figures wander by +-30%, so it then loads ours and each peer at
the same time on one pinned CPU, where the split of that CPU makes the ratio robust. Then it loads
``ours`` again while flipping the store's current snapshot and calling POST /v1/admin/reload every 0.2 s
(0 failed requests expected), checks that the admin endpoint refuses a request without the key, and
times each store's lookups alone.

    python bench/serve.py --run runs/ml-1m --store sqlite:runs/serve/ml1m.sqlite [--redis redis://127.0.0.1:6379/0]

``--workers 1 2`` compares only ``alignrec serve --workers N`` for each N, side by side, in one run:

    python bench/serve.py --run RUN --store URL --workers 1 2

``--soak SECONDS`` runs only a long load on ``ours`` instead: ``--warmup`` seconds of wrk, then SECONDS of
wrk while the snapshot flips and reloads every ``--reload-every`` seconds; it prints requests, failures
and the server's RSS after the warm-up and at the end, and exits 1 unless no request failed and the end
RSS is within 10% of the warm one (a leak per request or per reload shows as growth):

    python bench/serve.py --run RUN --store URL --soak 60 --reload-every 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

KEY = "bench-key"
SRC = Path(__file__).resolve().parents[1] / "src"
WRK_SCRIPT = """
local ids = {}
for line in io.lines(os.getenv("USERS_FILE")) do ids[#ids + 1] = line end
math.randomseed(7)
request = function()
  return wrk.format("GET", "/v1/users/" .. ids[math.random(#ids)] .. "/recommendations?k=10")
end
"""


def bare_app(kind: str, constant_file: str):  # type: ignore[no-untyped-def]
    """The peer: the same route template, a constant answer (a real answer of ours, so the same bytes)."""
    from fastapi import FastAPI, Response

    encoded = Path(constant_file).read_bytes()
    constant = json.loads(encoded)
    app = FastAPI()
    if kind == "bare":
        @app.get("/v1/users/{user_id}/recommendations")
        async def listing(user_id: str, k: int = 10) -> dict:
            return constant
    else:
        @app.get("/v1/users/{user_id}/recommendations")
        async def listing_bytes(user_id: str, k: int = 10) -> Response:
            return Response(encoded, media_type="application/json")
    return app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(base: str, path: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + path, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server at {base} not ready after {timeout:.0f} s")


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(server: subprocess.Popen, base: str, users_file: str, seconds: int, connections: int) -> dict[str, float]:
    """wrk's figures plus the server's CPU time per request (robust to other jobs on the machine)."""
    before = cpu_seconds(server.pid)
    result = wrk(base, users_file, seconds, connections)
    result["cpu_us"] = (cpu_seconds(server.pid) - before) / result["requests"] * 1e6
    return result


def wrk_process(base: str, users_file: str, seconds: int, connections: int, cpus: set[int] | None = None):  # type: ignore[no-untyped-def]
    """A running wrk (one thread, random users); ``cpus`` pins it."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    process = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, base],
        env={**os.environ, "USERS_FILE": users_file}, stdout=subprocess.PIPE, text=True,
    )
    if cpus:
        os.sched_setaffinity(process.pid, cpus)
    process.script = script.name  # type: ignore[attr-defined]
    return process


def wrk(base: str, users_file: str, seconds: int, connections: int) -> dict[str, float]:
    return wrk_result(wrk_process(base, users_file, seconds, connections))


def wrk_result(process) -> dict[str, float]:  # type: ignore[no-untyped-def]
    out, _ = process.communicate()
    os.unlink(process.script)
    if process.returncode:
        raise SystemExit(f"wrk failed ({process.returncode})")

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "req_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "requests": requests,
        "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


def store_lookups(url: str, users: list[str], seconds: float = 3.0) -> float:
    """Lookups/s of one store alone: random users, one get per lookup, one thread."""
    sys.path.insert(0, str(SRC))
    from alignrec.serve.store import open_store

    with open_store(url) as store:
        snapshot = store.current()
        rng = random.Random(0)
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for user in rng.choices(users, k=500):
                assert store.get(snapshot, user) is not None
            done += 500
        return done / (time.perf_counter() - started)


def rss_bytes(pid: int) -> int:
    """A process's resident memory now (VmRSS in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"no VmRSS for process {pid}")


def reload_under_load(base: str, store_url: str, users_file: str, seconds: int, connections: int,
                      every: float = 0.2) -> dict:
    """wrk on ``ours`` while another thread flips the current snapshot and reloads every ``every`` seconds."""
    sys.path.insert(0, str(SRC))
    from alignrec.serve.store import PUBLISHED, open_store

    with open_store(store_url) as store:
        published = [s.id for s in store.snapshots() if s.state == PUBLISHED][-2:]
        original = store.current()
        if len(published) < 2:
            raise SystemExit(f"{store_url}: needs two published snapshots for the reload test; "
                             "run alignrec precompute again with --force")
        stop, reloads, statuses = threading.Event(), [], []

        def flip() -> None:
            with httpx.Client(base_url=base, headers={"X-API-Key": KEY}) as admin:
                turn = 0
                while not stop.is_set():
                    store.activate(published[turn % 2])
                    response = admin.post("/v1/admin/reload")
                    statuses.append(response.status_code)
                    reloads.append(response.json().get("changed"))
                    turn += 1
                    stop.wait(every)

        flipper = threading.Thread(target=flip)
        flipper.start()
        try:
            load = wrk(base, users_file, seconds, connections)
        finally:
            stop.set()
            flipper.join()
            store.activate(original)
            httpx.post(base + "/v1/admin/reload", headers={"X-API-Key": KEY})
    return {**load, "reloads": len(reloads), "switched": sum(bool(r) for r in reloads),
            "reload_failures": sum(s != 200 for s in statuses)}


def simultaneous(servers: dict[str, subprocess.Popen], bases: dict[str, str], users_file: str,
                 args: argparse.Namespace) -> None:
    """Ours and a peer loaded at the same time, both servers pinned to one CPU, the two wrk to another.

    The scheduler splits that CPU evenly between the two servers, so the ratio of their req/s is the
    ratio of their costs per request, whatever else the machine runs at that moment (a noisy
    neighbour slows both alike). Absolute req/s here are about half a server's capacity.
    """
    if os.cpu_count() is None or os.cpu_count() < 2:
        return
    server_cpu, client_cpu = {1}, {0}
    everything = os.sched_getaffinity(0)
    print(f"simultaneous, servers pinned to CPU 1, wrk to CPU 0, {args.rounds} rounds of {args.seconds} s:")
    for peer in ("bare", "bare-bytes"):
        pair = ("ours", peer)
        for name in pair:
            os.sched_setaffinity(servers[name].pid, server_cpu)
        ratios = []
        try:
            for _ in range(args.rounds):
                running = [wrk_process(bases[n], users_file, args.seconds, args.connections, client_cpu) for n in pair]
                ours, other = (wrk_result(p) for p in running)
                ratios.append(ours["req_s"] / other["req_s"])
        finally:
            for name in pair:
                os.sched_setaffinity(servers[name].pid, everything)
        print(f"  ours / {peer}: median {statistics.median(ratios):.2f} of the throughput "
              f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")


def soak(server: subprocess.Popen, base: str, users_file: str, args: argparse.Namespace) -> bool:
    """The long load with reloads; True if no request failed and the RSS stayed within 10%."""
    wrk(base, users_file, args.warmup, args.connections)
    warm = rss_bytes(server.pid)
    under = reload_under_load(base, args.store, users_file, args.soak, args.connections, args.reload_every)
    end = rss_bytes(server.pid)
    ratio = end / warm
    failed = under["errors"] + under["reload_failures"]
    print(f"soak: wrk -t1 -c{args.connections} -d{args.soak}s after a {args.warmup} s warm-up, a reload every "
          f"{args.reload_every:g} s: {under['requests']:,} requests, {under['errors']} failed, {under['reloads']} "
          f"reloads ({under['switched']} switched the snapshot, {under['reload_failures']} failed), "
          f"{under['req_s']:.0f} req/s, p99 {under['p99_ms']:.2f} ms")
    print(f"soak: server RSS {warm / 2**20:.1f} MiB after the warm-up, {end / 2**20:.1f} MiB at the end "
          f"(ratio {ratio:.3f})")
    return failed == 0 and abs(ratio - 1) <= 0.10


def compare_workers(args: argparse.Namespace, users_file: str, env: dict[str, str]) -> None:
    """``alignrec serve --workers N`` for each N of ``--workers``, all running, loaded in interleaved rounds."""
    servers, bases = {}, {}
    for count in args.workers:
        port = free_port()
        bases[count] = f"http://127.0.0.1:{port}"
        servers[count] = start([sys.executable, "-m", "alignrec.cli", "serve", "--run", args.run, "--store", args.store,
                                "--port", str(port), "--workers", str(count)], env)
    try:
        for base in bases.values():
            wait_ready(base, "/v1/info")
            wrk(base, users_file, 1, args.connections)  # warm-up
        results: dict[int, list[dict[str, float]]] = {count: [] for count in bases}
        for _ in range(args.rounds):
            for count, base in bases.items():
                results[count].append(wrk(base, users_file, args.seconds, args.connections))
        print(f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} interleaved rounds (median round), "
              f"GET /v1/users/<random>/recommendations?k=10, {os.cpu_count()} CPUs (wrk on them too)")
        print(f"{'workers':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  req/s of every round")
        median = {}
        for count, rounds in results.items():
            median[count] = sorted(rounds, key=lambda r: r["req_s"])[len(rounds) // 2]
            row = median[count]
            every = ", ".join(f"{r['req_s']:.0f}" for r in rounds)
            print(f"{count:<8} {row['req_s']:>9.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
                  f"{sum(r['errors'] for r in rounds):>7}  {every}")
        first = args.workers[0]
        for count in args.workers[1:]:
            print(f"{count} workers / {first}: {median[count]['req_s'] / median[first]['req_s']:.2f}x the requests/s")
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--store", required=True, help="a store with a published snapshot of --run")
    parser.add_argument("--redis", help="also time this Redis store's lookups (a published snapshot of --run)")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--soak", type=int, metavar="SECONDS",
                        help="only a load of SECONDS with reloads, checking failures and the server's memory")
    parser.add_argument("--warmup", type=int, default=10, help="--soak: seconds of load before the first RSS")
    parser.add_argument("--reload-every", type=float, default=3.0, help="--soak: seconds between reloads")
    parser.add_argument("--workers", type=int, nargs="+", metavar="N",
                        help="only compare `alignrec serve --workers N` for each N, side by side (e.g. 1 2)")
    parser.add_argument("--bare-server", choices=["bare", "bare-bytes"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--constant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        import uvicorn

        uvicorn.run(bare_app(args.bare_server, args.constant), host="127.0.0.1", port=args.port,
                    log_level="warning", access_log=False)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")

    sys.path.insert(0, str(SRC))
    from alignrec.data.dataset import SequenceDataset

    users = [str(u) for u in SequenceDataset.load(Path(args.run) / "data").user_ids]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as users_file:
        users_file.write("\n".join(users) + "\n")

    env = {**os.environ, "PYTHONPATH": str(SRC), "ALIGNREC_API_KEY": KEY}
    if args.workers:
        try:
            compare_workers(args, users_file.name, env)
        finally:
            os.unlink(users_file.name)
        return
    ports = {name: free_port() for name in ("ours", "bare", "bare-bytes")}
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    servers = {"ours": start([sys.executable, "-m", "alignrec.cli", "serve", "--run", args.run, "--store", args.store,
                              "--port", str(ports["ours"])], env)}
    constant = tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False)  # noqa: SIM115 (filled once "ours" answers)
    try:
        wait_ready(bases["ours"], "/readyz")
        if args.soak:
            passed = soak(servers["ours"], bases["ours"], users_file.name, args)
            raise SystemExit(0 if passed else 1)
        constant.write(httpx.get(f"{bases['ours']}/v1/users/{users[0]}/recommendations?k=10").content)
        constant.close()
        for kind in ("bare", "bare-bytes"):
            servers[kind] = start([sys.executable, __file__, "--run", args.run, "--store", args.store,
                                   "--bare-server", kind, "--port", str(ports[kind]), "--constant", constant.name], env)
        for kind in ("bare", "bare-bytes"):
            wait_ready(bases[kind], "/v1/users/x/recommendations")
        for base in bases.values():  # warm-up
            wrk(base, users_file.name, 1, args.connections)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in bases}
        for _ in range(args.rounds):  # interleaved, so a burst of other work hits every server alike
            for name, base in bases.items():
                results[name].append(measured(servers[name], base, users_file.name, args.seconds, args.connections))
        median = {name: sorted(rounds, key=lambda r: r["req_s"])[len(rounds) // 2] for name, rounds in results.items()}
        cpu = {name: statistics.median(r["cpu_us"] for r in rounds) for name, rounds in results.items()}
        print(f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} interleaved rounds (median round), "
              f"GET /v1/users/<random of {len(users):,}>/recommendations?k=10")
        print(f"{'server':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'server CPU us/req':>18}"
              "  req/s of every round")
        for name, row in median.items():
            rounds = ", ".join(f"{r['req_s']:.0f}" for r in results[name])
            errors = sum(r["errors"] for r in results[name])
            print(f"{name:<12} {row['req_s']:>9.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {errors:>7} "
                  f"{cpu[name]:>18.0f}  {rounds}")
        for peer in ("bare", "bare-bytes"):
            print(f"ours / {peer}: {median['ours']['req_s'] / median[peer]['req_s']:.2f} of the throughput (req/s), "
                  f"{cpu[peer] / cpu['ours']:.2f} by server CPU per request")
        simultaneous(servers, bases, users_file.name, args)

        under = reload_under_load(bases["ours"], args.store, users_file.name, args.seconds, args.connections)
        print(f"reload under load: {under['requests']:,} requests, {under['errors']} failed, "
              f"{under['reloads']} reloads ({under['switched']} switched the snapshot, "
              f"{under['reload_failures']} failed), {under['req_s']:.0f} req/s, p99 {under['p99_ms']:.2f} ms")
        refused = [httpx.post(bases["ours"] + "/v1/admin/reload", headers=h).status_code
                   for h in ({}, {"X-API-Key": "wrong"})]
        print(f"admin reload without key: {refused[0]}, with a wrong key: {refused[1]}")
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
        os.unlink(users_file.name)
        os.unlink(constant.name)

    for url in filter(None, [args.store, args.redis]):
        print(f"store alone, {url.split(':')[0]}: {store_lookups(url, users):,.0f} lookups/s (one thread, random users)")


if __name__ == "__main__":
    main()

"""The MQTT bridge on localhost: readings per second it sustains for 1, 50 and 500 topics, and the latency it
adds from a reading's publish to its prediction's arrival (median, p99), with the reorder window off (0) and on
(16, the default), for readings whose ts is irregular (each waits for the reorder hold or a full window), and
with two bridge processes on disjoint topic filters.

    python benchmarks/mqtt_bridge.py BUNDLE [--variant tflite-int8] [--readings 20000] [--topics 1,50,500]
        [--windows 0,16] [--irregular-topics 50] [--processes 2] [--process-topics 50]

Needs the ``mosquitto`` binary and paho-mqtt. Each run gets its own broker (a generated config on a free port,
as the tests use: set_tcp_nodelay true, see docs/mqtt.md) and its own ``edgernn bridge`` process(es) with
``--state-file`` (saves every 100 readings, as by default). Throughput: one client publishes ``--readings`` JSON readings round-robin over the
topics at QoS 1 as fast as the broker takes them; the rate is readings over the time from the first publish to
the last prediction received. Latency: readings paced at ``--rate`` per second (well under the throughput), each
timed from just before its publish to its prediction's arrival at a subscriber in the same process (one clock).
Writes ``benchmarks/mqtt_results.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "runtime"))

from mqtt_broker import Client, Mosquitto  # noqa: E402


def _bridge(bundle, variant, url, state, window: int, subscribe: str = "bench/#"):
    process = subprocess.Popen([sys.executable, "-m", "edgernn", "bridge", str(bundle), url, "--variant", variant,
                                "--subscribe", subscribe, "--state-file", str(state),
                                "--reorder-window", str(window)],
                               stderr=subprocess.PIPE, text=True, cwd=ROOT)
    for line in process.stderr:
        if line.startswith("subscribed to"):
            return process
    raise RuntimeError("the bridge did not start")


def _c_load(port: int, names: list[str], payloads: list[str]) -> float:
    """Readings per second with Mosquitto's own C clients as the load: one ``mosquitto_pub -l`` per topic
    (its readings in order, QoS 1) and a ``mosquitto_sub -C`` counting the predictions, so that the Python
    harness does not take the CPU the bridge would use (it took 80 % of a core of this 2-core machine)."""
    per_topic = {name: [] for name in names}
    for i, payload in enumerate(payloads):
        per_topic[names[i % len(names)]].append(payload)
    counter = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-q", "1", "-t", "predictions/#", "-C",
                                str(len(payloads))], stdout=subprocess.DEVNULL)
    time.sleep(0.5)  # subscribed before the first reading (not a pass/fail decision: the count below is)
    start = time.monotonic()
    senders = [subprocess.Popen(["mosquitto_pub", "-p", str(port), "-q", "1", "-t", name, "-l"],
                                stdin=subprocess.PIPE, text=True) for name in names]
    for sender, name in zip(senders, names):
        sender.stdin.write("\n".join(per_topic[name]) + "\n")
        sender.stdin.close()
    counter.wait(timeout=600)
    seconds = time.monotonic() - start
    for sender in senders:
        sender.wait(timeout=60)
    if counter.returncode != 0:
        raise RuntimeError(f"mosquitto_sub ended with {counter.returncode} before {len(payloads)} predictions")
    return len(payloads) / seconds


def measure(paho, bundle, variant: str, topics: int, readings: int, rate: float, scratch: Path, window: int,
            irregular: bool = False, processes: int = 1, load: str = "python") -> dict:
    """One row. Each topic's ts counts 0, 1, 2... (regular: the reorder window lets each reading through at
    once); ``irregular`` adds a random fraction to each (every reading then waits for the hold or a full
    window). ``processes`` bridges share the topics on disjoint filters (``bench/p0/#``, ``bench/p1/#``...), each
    with its own state file."""
    name = f"{topics}-{window}-{irregular}-{processes}"
    broker = Mosquitto(scratch / f"broker-{name}").start()
    bridges = [_bridge(bundle, variant, broker.url, scratch / f"state-{name}-{j}.npz", window, f"bench/p{j}/#")
               for j in range(processes)]
    out = Client(paho, broker.port, "predictions/#") if load == "python" else None  # the C load counts its own
    publisher = Client(paho, broker.port)
    names = [f"bench/p{k % processes}/{k}/temperature" for k in range(topics)]
    values = np.sin(np.arange(readings) * 0.05)
    jitter = np.random.default_rng(0).uniform(0, 0.5, 2 * readings) if irregular else np.zeros(2 * readings)
    try:
        payloads = [json.dumps({"ts": i // topics + jitter[i], "value": float(values[i])}) for i in range(readings)]
        if load == "c":
            throughput = _c_load(broker.port, names, payloads)
            out = Client(paho, broker.port, "predictions/#")
            out.wait_for(topics, timeout=10)  # the retained ones (one per topic) come in at subscribing
        else:
            start = time.monotonic()
            for i in range(readings):
                publisher.client.publish(names[i % topics], payloads[i], qos=1)
            if not out.wait_for(readings, timeout=600):
                raise RuntimeError(f"{out.count()} of {readings} predictions arrived")
            last = max(max(times) for times in out.arrived.values())
            throughput = readings / (last - start)

        out.received.clear()
        out.arrived.clear()
        sent = {}
        paced = min(readings, int(rate * 10))
        for i in range(paced):
            topic = names[i % topics]
            ts = (readings + i) // topics + jitter[readings + i]  # each topic's count goes on
            sent[(topic, ts)] = time.monotonic()
            publisher.client.publish(topic, json.dumps({"ts": ts, "value": float(values[i])}), qos=1)
            time.sleep(1 / rate)
        if not out.wait_for(paced, timeout=120):
            raise RuntimeError(f"{out.count()} of {paced} paced predictions arrived")
        latencies = [arrived - sent[(topic[len("predictions/"):], message["ts"])]
                     for topic in out.received
                     for message, arrived in zip(out.received[topic], out.arrived[topic])]
        return {"topics": topics, "processes": processes, "load": load, "reorder_window": window, "ts": "irregular" if irregular else "regular",
                "readings": readings, "readings_per_s": round(throughput),
                "latency_ms_median": round(1e3 * float(np.median(latencies)), 2),
                "latency_ms_p99": round(1e3 * float(np.percentile(latencies, 99)), 2), "paced_rate": rate}
    finally:
        for bridge in bridges:
            bridge.terminate()
            bridge.wait(timeout=60)
        if out is not None:
            out.close()
        publisher.close()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--variant", default="tflite-int8")
    parser.add_argument("--readings", type=int, default=20000)
    parser.add_argument("--topics", default="1,50,500")
    parser.add_argument("--rate", type=float, default=200.0, help="readings per second in the latency run")
    parser.add_argument("--windows", default="0,16", help="--reorder-window values to compare")
    parser.add_argument("--irregular-topics", default="50", help="topic counts also run with irregular ts")
    parser.add_argument("--processes", default="2", help="bridge processes on disjoint filters, for the topic "
                        "counts also run so (regular ts, the largest --reorder-window); empty: none")
    parser.add_argument("--process-topics", default="50", help="topic counts run with --processes")
    parser.add_argument("--load", default="python", choices=["python", "c"],
                        help="who publishes the readings and counts the predictions in the throughput run: the "
                             "harness's paho clients, or mosquitto_pub/mosquitto_sub (package mosquitto-clients)")
    args = parser.parse_args()
    from mqtt_broker import require_mqtt

    paho = require_mqtt()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        widest = max(int(w) for w in args.windows.split(","))
        runs = [(int(t), int(w), False, 1) for t in args.topics.split(",") for w in args.windows.split(",")]
        runs += [(int(t), widest, True, 1) for t in args.irregular_topics.split(",") if t]
        runs += [(int(t), widest, False, int(p)) for t in args.process_topics.split(",") if t
                 for p in args.processes.split(",") if p]
        for topics, window, irregular, processes in runs:
            rows.append(measure(paho, args.bundle, args.variant, topics, args.readings, args.rate, Path(scratch),
                                window, irregular, processes, args.load))
            print(rows[-1], file=sys.stderr, flush=True)
    machine = f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    result = {"machine": machine, "variant": args.variant, "bundle": str(args.bundle), "rows": rows}
    (ROOT / "benchmarks" / "mqtt_results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"| topics | bridges | --reorder-window | ts | readings/s | added latency median | p99 |  ({args.variant}, "
          f"{machine}, load: {args.load})")
    print("|---:|---:|---:|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['topics']} | {row['processes']} | {row['reorder_window']} | {row['ts']} | {row['readings_per_s']} | "
              f"{row['latency_ms_median']} ms | {row['latency_ms_p99']} ms |")


if __name__ == "__main__":
    main()

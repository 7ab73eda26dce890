"""The MQTT bridge on localhost: readings per second it sustains for 1, 50 and 500 topics, and the latency it
adds from a reading's publish to its prediction's arrival (median, p99), with the reorder window off (0) and on
(16, the default), and for readings whose ts is irregular (each waits for the reorder hold or a full window).

    python benchmarks/mqtt_bridge.py BUNDLE [--variant tflite-int8] [--readings 20000] [--topics 1,50,500]
        [--windows 0,16] [--irregular-topics 50]

Needs the ``mosquitto`` binary and paho-mqtt. Each topic count gets its own broker (a generated config on a free
port, as the tests use) and its own ``edgernn bridge`` process with ``--state-file`` (saves every 100
readings, as by default). Throughput: one client publishes ``--readings`` JSON readings round-robin over the
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


def _bridge(bundle, variant, url, state, window: int):
    process = subprocess.Popen([sys.executable, "-m", "edgernn", "bridge", str(bundle), url, "--variant", variant,
                                "--subscribe", "bench/#", "--state-file", str(state),
                                "--reorder-window", str(window)],
                               stderr=subprocess.PIPE, text=True, cwd=ROOT)
    for line in process.stderr:
        if line.startswith("subscribed to"):
            return process
    raise RuntimeError("the bridge did not start")


def measure(paho, bundle, variant: str, topics: int, readings: int, rate: float, scratch: Path, window: int,
            irregular: bool = False) -> dict:
    """One row. Each topic's ts counts 0, 1, 2... (regular: the reorder window lets each reading through at
    once); ``irregular`` adds a random fraction to each (every reading then waits for the hold or a full
    window)."""
    name = f"{topics}-{window}-{irregular}"
    broker = Mosquitto(scratch / f"broker-{name}").start()
    bridge = _bridge(bundle, variant, broker.url, scratch / f"state-{name}.npz", window)
    out = Client(paho, broker.port, "predictions/#")
    publisher = Client(paho, broker.port)
    names = [f"bench/{k}/temperature" for k in range(topics)]
    values = np.sin(np.arange(readings) * 0.05)
    jitter = np.random.default_rng(0).uniform(0, 0.5, 2 * readings) if irregular else np.zeros(2 * readings)
    try:
        start = time.monotonic()
        for i in range(readings):
            publisher.client.publish(names[i % topics], json.dumps({"ts": i // topics + jitter[i],
                                                                    "value": float(values[i])}), qos=1)
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
        return {"topics": topics, "reorder_window": window, "ts": "irregular" if irregular else "regular",
                "readings": readings, "readings_per_s": round(throughput),
                "latency_ms_median": round(1e3 * float(np.median(latencies)), 2),
                "latency_ms_p99": round(1e3 * float(np.percentile(latencies, 99)), 2), "paced_rate": rate}
    finally:
        bridge.terminate()
        bridge.wait(timeout=60)
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
    args = parser.parse_args()
    from mqtt_broker import require_mqtt

    paho = require_mqtt()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        runs = [(int(t), int(w), False) for t in args.topics.split(",") for w in args.windows.split(",")]
        runs += [(int(t), max(int(w) for w in args.windows.split(",")), True)
                 for t in args.irregular_topics.split(",") if t]
        for topics, window, irregular in runs:
            rows.append(measure(paho, args.bundle, args.variant, topics, args.readings, args.rate, Path(scratch),
                                window, irregular))
            print(rows[-1], file=sys.stderr, flush=True)
    machine = f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    result = {"machine": machine, "variant": args.variant, "bundle": str(args.bundle), "rows": rows}
    (ROOT / "benchmarks" / "mqtt_results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"| topics | --reorder-window | ts | readings/s | added latency median | p99 |  ({args.variant}, {machine})")
    print("|---:|---:|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['topics']} | {row['reorder_window']} | {row['ts']} | {row['readings_per_s']} | "
              f"{row['latency_ms_median']} ms | {row['latency_ms_p99']} ms |")


if __name__ == "__main__":
    main()

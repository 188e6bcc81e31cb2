"""faust-streaming vs raw aiokafka: consume -> transform -> produce of RawRead bytes on one broker.

    python -m loadtest.faust_bench [--messages 100000] [--take 1000] [--bootstrap HOST:PORT]

Fills a 4-partition input topic (RAW_READS' contract, prefix "bench-in-") with `--messages` synthetic
RawReads (loadtest.stream's generator, 1 kB crop), then drains it three times into separate output
topics, each with its own consumer group, and reports messages/s from the first record received to
the last one produced and flushed:

* aiokafka: `getmany(max_records=--take)`, parse + modify + serialize each RawRead, `send` without
  waiting per message, await the batch's futures, commit;
* faust, `stream.take(--take, within=0.1)`: the same transform, `await topic.send()` per message;
* faust, one event at a time (`async for value in stream`), the style the issue reports as slow.

faust is an optional benchmark dependency (pip install faust-streaming), never a runtime one; each
faust run is a worker in a child process (faust owns its event loop), which exits once done.
Starts its own Kafka broker under var/loadtest-faust unless `--bootstrap` is given; stops it after.
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata

from services.common.kafka import make_producer
from services.common.kafka_admin import ensure_topics
from services.common.pb.platewatch.v1 import reads_pb2
from services.common.settings import REPO_ROOT
from services.common.topics import RAW_READS
from services.stack import Stack, StackPorts

INPUT_PREFIX = "bench-in-"


def say(message: str) -> None:
    print(f"[faust-bench] {message}", flush=True)


def transform(value: bytes) -> bytes:
    """The work per message: parse, touch a field, serialize (what any processor must at least do)."""
    raw = reads_pb2.RawRead.FromString(value)
    raw.model_version = "bench"
    return raw.SerializeToString()


async def fill_input(bootstrap: str, messages: int) -> float:
    from loadtest.stream import PassGenerator

    generator = PassGenerator([f"cam-{i}" for i in range(200)], [], 0.0, 0.2, 1.1, 1000, 0)
    producer = make_producer(bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    topic = RAW_READS.name(INPUT_PREFIX)
    sent, started = 0, time.perf_counter()
    try:
        while sent < messages:
            vehicle = generator.next_pass()
            for frame in vehicle.frames[: messages - sent]:
                await producer.send(topic, value=frame, key=vehicle.camera.encode())
                sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent / (time.perf_counter() - started)


async def aiokafka_run(bootstrap: str, messages: int, batch: int) -> dict[str, Any]:
    output = RAW_READS.name("bench-aiokafka-out-")
    consumer = AIOKafkaConsumer(
        RAW_READS.name(INPUT_PREFIX),
        bootstrap_servers=bootstrap,
        group_id=f"bench-aiokafka-{time.time_ns()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = make_producer(bootstrap, linger_ms=5, max_batch_size=512 * 1024)
    await producer.start()
    await consumer.start()
    done, started = 0, 0.0
    try:
        while done < messages:
            batches = await consumer.getmany(timeout_ms=500, max_records=batch)
            if batches and not started:
                started = time.perf_counter()
            futures = []
            offsets = {}
            for tp, records in batches.items():
                for record in records:
                    futures.append(
                        await producer.send(output, value=transform(record.value or b""), key=record.key)
                    )
                offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
                done += len(records)
            await asyncio.gather(*futures)
            if offsets:
                await consumer.commit(offsets)
        await producer.flush()
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
        await producer.stop()
    return {"messages": done, "seconds": round(elapsed, 2), "messages_per_s": round(done / elapsed)}


def faust_worker(bootstrap: str, messages: int, take: int, mode: str) -> None:
    """Child process: one faust app draining the input topic; prints its figures as JSON, then exits."""
    import faust

    app = faust.App(
        f"bench-faust-{mode}-{time.time_ns()}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        datadir=str(REPO_ROOT / "var" / "loadtest-faust" / "faust-data"),
        topic_partitions=4,
    )
    source = app.topic(RAW_READS.name(INPUT_PREFIX), value_type=bytes, value_serializer="raw")
    sink = app.topic(
        RAW_READS.name(f"bench-faust-{mode}-out-"), value_type=bytes, value_serializer="raw", partitions=4
    )
    state = {"done": 0, "started": 0.0}

    async def finish() -> None:
        await app.producer.flush()
        elapsed = time.perf_counter() - state["started"]
        figures = {"messages": state["done"], "seconds": round(elapsed, 2)}
        figures["messages_per_s"] = round(state["done"] / elapsed)
        print("RESULT " + json.dumps(figures), flush=True)
        os._exit(0)  # a benchmark child: nothing to clean up that the parent does not remove

    if mode == "take":

        @app.agent(source)
        async def batched(stream: Any) -> None:
            async for values in stream.take(take, within=0.1):
                if not state["started"]:
                    state["started"] = time.perf_counter()
                for value in values:
                    await sink.send(value=transform(value))
                state["done"] += len(values)
                if state["done"] >= messages:
                    await finish()

    else:

        @app.agent(source)
        async def per_event(stream: Any) -> None:
            async for value in stream:
                if not state["started"]:
                    state["started"] = time.perf_counter()
                await sink.send(value=transform(value))
                state["done"] += 1
                if state["done"] >= messages:
                    await finish()

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn", "--without-web"]
    app.main()


def faust_run(bootstrap: str, messages: int, take: int, mode: str, timeout_s: float) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "loadtest.faust_bench",
        "--worker",
        mode,
        "--bootstrap",
        bootstrap,
        "--messages",
        str(messages),
        "--take",
        str(take),
    ]
    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=REPO_ROOT)
    except subprocess.TimeoutExpired as exc:
        return {
            "error": f"did not finish {messages} messages in {timeout_s:.0f}s",
            "stderr": str(exc.stderr)[-800:],
        }
    # faust redirects stdout into its log, so the line may carry a log prefix and land on stderr.
    for line in (child.stdout + child.stderr).splitlines():
        if "RESULT " in line:
            figures: dict[str, Any] = json.loads(line.split("RESULT ", 1)[1])
            return figures
    return {"error": f"exit code {child.returncode}", "output": (child.stdout + child.stderr)[-1500:]}


def faust_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("faust-streaming")
    except Exception:
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--take", type=int, default=1000, help="stream.take / getmany batch size")
    parser.add_argument("--bootstrap", default=None, help="use this broker instead of starting one")
    parser.add_argument("--timeout", type=float, default=300, help="seconds allowed per faust run")
    parser.add_argument("--worker", choices=("take", "event"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        faust_worker(args.bootstrap, args.messages, args.take, args.worker)
        return
    var_dir = REPO_ROOT / "var" / "loadtest-faust"
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    stack = Stack(Path(var_dir), ports=StackPorts.free(), kafka_bootstrap=args.bootstrap)
    try:
        if args.bootstrap is None:
            stack.start_kafka()
        bootstrap = stack.bootstrap
        prefixes = [INPUT_PREFIX, "bench-aiokafka-out-", "bench-faust-take-out-", "bench-faust-event-out-"]
        for prefix in prefixes:
            asyncio.run(ensure_topics(bootstrap, prefix, [RAW_READS]))
        say(f"filling the input topic with {args.messages} RawReads")
        fill_rate = asyncio.run(fill_input(bootstrap, args.messages))
        results: dict[str, Any] = {
            "messages": args.messages,
            "batch": args.take,
            "producer_fill_per_s": round(fill_rate),
            "faust_streaming_version": faust_version(),
        }
        say("aiokafka: getmany -> transform -> send")
        results["aiokafka"] = asyncio.run(aiokafka_run(bootstrap, args.messages, args.take))
        say(f"aiokafka: {results['aiokafka']}")
        for mode in ("take", "event"):
            say(f"faust ({mode})")
            results[f"faust_{mode}"] = faust_run(bootstrap, args.messages, args.take, mode, args.timeout)
            say(f"faust ({mode}): {results[f'faust_{mode}']}")
        results["cpus"] = os.cpu_count()
        results["load_average_1m"] = round(os.getloadavg()[0], 2)
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            stack.stop()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

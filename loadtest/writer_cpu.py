"""CPU cost of the writer's storage work per read, without Kafka (a quieter figure than wall time on a
shared machine):

    python -m loadtest.writer_cpu [--passes 20000] [--block 125 --block 2500 ...]

Reads are built by the normalizer's own code from synthetic passes exactly as `loadtest.stream` makes
them (2,000 passes/s of event time, 200 cameras), serialized, then stored in blocks of `--block` reads
into a fresh embedded ClickHouse with the real migrations, the way the writer stores a batch: parse
each Read and build its rows, the "read_id already stored" query, then the read_images and reads
inserts with a deduplication token (the materialized views on `reads` run inside the insert). Prints,
per block size, CPU milliseconds per read (process time: it includes ClickHouse's own threads) split
into rows / dedup query / inserts, and the CPU its background merges used in the seconds after.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from loadtest.stream import FRAME_STEP_NS, PassGenerator, hot_plate
from services.common.pb.platewatch.v1 import common_pb2, reads_pb2
from services.common.service import collect_garbage_less_often
from services.normalizer.grammar import default_grammar
from services.normalizer.tracking import PassTracker, build_read
from services.storage.migrations import apply_migrations
from services.writer.main import insert_settings, stored_read_ids
from services.writer.rows import READ_IMAGES_COLUMNS, READS_COLUMNS, read_rows
from services.writer.settings import WriterSettings


def serialized_reads(passes: int, cameras: int, rate: float = 2000.0) -> list[bytes]:
    """The final Reads of `passes` synthetic passes (event time ending an hour ago), serialized."""
    camera_ids = [f"lt-cam-{i:04d}" for i in range(cameras)]
    generator = PassGenerator(camera_ids, [hot_plate(i) for i in range(1000)], 0.01, 0.2, 1.1, 1000, 0)
    start_ns = time.time_ns() - 3600 * 1_000_000_000
    frames: list[tuple[int, bytes]] = []
    for n in range(passes):
        vehicle = generator.next_pass(start_ns + int(n * 1e9 / rate))
        frames.extend((vehicle.first_ns + i * FRAME_STEP_NS, frame) for i, frame in enumerate(vehicle.frames))
    frames.sort(key=lambda item: item[0])
    grammar = default_grammar()
    tracker = PassTracker(2.0)
    camera_info = {c: common_pb2.CameraInfo(camera_id=c, agency_id="loadtest") for c in camera_ids}
    closed = []
    for offset, (_, frame) in enumerate(frames):
        closed.extend(tracker.add(reads_pb2.RawRead.FromString(frame), offset))
    # The passes still open at the end are closed too: every pass gives its read.
    closed.extend(tracker.close_all())
    return [
        build_read(track, camera_info[track.camera_id], grammar, time.time_ns(), 90.0).SerializeToString()
        for track in closed
    ]


def store(client: Client, reads: list[bytes], block: int, settle_s: float) -> dict[str, float]:
    """Store `reads` in blocks of `block` into a fresh database; CPU ms per read by step."""
    # One embedded engine per process: each block size gets its own database in it.
    client.command(f"CREATE DATABASE writer_cpu_{block}")
    client.database = f"writer_cpu_{block}"
    apply_migrations(client)
    spent = {"rows": 0.0, "dedup": 0.0, "insert": 0.0}
    started = time.process_time()
    for first in range(0, len(reads), block):
        mark = time.process_time()
        now = datetime.now(UTC)
        rows = [read_rows(reads_pb2.Read.FromString(value), now) for value in reads[first : first + block]]
        spent["rows"] += time.process_time() - mark
        mark = time.process_time()
        ids = sorted(r.read_id for r in rows)
        stored_read_ids(client, ids, min(r.captured_at for r in rows), max(r.captured_at for r in rows))
        spent["dedup"] += time.process_time() - mark
        mark = time.process_time()
        settings = insert_settings(f"writer-cpu/{first}")
        client.insert(
            "read_images", [r.image_row for r in rows], list(READ_IMAGES_COLUMNS), settings=settings
        )
        client.insert("reads", [r.read_row for r in rows], list(READS_COLUMNS), settings=settings)
        spent["insert"] += time.process_time() - mark
    total = time.process_time() - started
    time.sleep(settle_s)
    merges = time.process_time() - started - total
    stored = int(client.query("SELECT count() FROM reads").result_rows[0][0])
    per_read = 1000 / len(reads)
    return {
        "block": block,
        "reads": len(reads),
        "stored": stored,
        "cpu_ms_per_read": round(total * per_read, 4),
        **{f"{step}_ms_per_read": round(seconds * per_read, 4) for step, seconds in spent.items()},
        "merges_cpu_s_after": round(merges, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passes", type=int, default=20_000)
    parser.add_argument("--cameras", type=int, default=200)
    parser.add_argument("--block", type=int, action="append", help="reads per insert (repeatable)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to let merges run after")
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=WriterSettings().writer_gc_gen0_threshold,
        help="gen0 GC threshold, as the service sets it (0: Python's default)",
    )
    args = parser.parse_args()
    collect_garbage_less_often(args.gc_threshold)
    reads = serialized_reads(args.passes, args.cameras)
    client = clickhouse_connect.get_client(dsn=f"chdb://{tempfile.mkdtemp(prefix='writer-cpu-')}")
    try:
        for block in args.block or [125, 500, 2500, 5000]:
            print(json.dumps(store(client, reads, block, args.settle)), flush=True)
    finally:
        client.close()


if __name__ == "__main__":
    main()

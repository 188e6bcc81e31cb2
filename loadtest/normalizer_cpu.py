"""CPU cost of the normalizer's own work per raw read, without Kafka (a quieter figure than wall time
on a shared machine):

    python -m loadtest.normalizer_cpu [--rate 5000] [--seconds 20] [--cameras 200] [--profile]

Synthetic passes exactly as `loadtest.stream` makes them (event time advancing at `--rate` passes/s),
split over 4 source partitions by camera; per batch of `--batch-ms` of event time it does what one
normalizer transaction does apart from Kafka I/O: decode the raw reads, track, take early reads, build
and serialize the closed passes' reads, encode the state records. Prints CPU seconds per 10,000 raw
reads (process time) as JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import time
import zlib

from loadtest.stream import FRAME_STEP_NS, PassGenerator, hot_plate
from services.common.pb.platewatch.v1 import common_pb2, reads_pb2
from services.normalizer.grammar import default_grammar
from services.normalizer.tracking import PassTracker, build_read, track_state_json

PARTITIONS = 4


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def run(rate: float, seconds: float, cameras: int, batch_ms: float) -> dict[str, float]:
    camera_ids = [f"lt-cam-{i:04d}" for i in range(cameras)]
    generator = PassGenerator(camera_ids, [hot_plate(i) for i in range(1000)], 0.01, 0.2, 1.1, 1000, 0)
    # Frames in captured_at order, as Kafka would deliver them (partition by camera).
    frames: list[tuple[int, str, bytes]] = []
    start_ns = 1_700_000_000 * 1_000_000_000
    passes = int(rate * seconds)
    for n in range(passes):
        vehicle = generator.next_pass(start_ns + int(n * 1e9 / rate))
        for i, frame in enumerate(vehicle.frames):
            frames.append((vehicle.first_ns + i * FRAME_STEP_NS, vehicle.camera, frame))
    frames.sort(key=lambda item: item[0])
    grammar = default_grammar()
    trackers = [PassTracker(2.0) for _ in range(PARTITIONS)]
    camera_info = {c: common_pb2.CameraInfo(camera_id=c, agency_id="loadtest") for c in camera_ids}
    batch_ns = int(batch_ms * 1e6)
    counts = {"reads": 0, "early": 0, "state_records": 0, "batches": 0}

    def commit(touched: set[int], closed: list[object]) -> None:
        for track in closed:
            read = build_read(track, camera_info[track.camera_id], grammar, 0, 90.0)  # type: ignore[attr-defined]
            read.SerializeToString()
            counts["reads"] += 1
        for p in touched:
            for track, _ in trackers[p].take_early(grammar, 0.9, 1):
                read = build_read(track, camera_info[track.camera_id], grammar, 0, 90.0)
                read.provisional = True
                read.SerializeToString()
                counts["early"] += 1
            changed, closed_ids = trackers[p].take_changes()
            for track in changed:
                track_state_json(track)
            _json(trackers[p].partition_state())
            counts["state_records"] += len(changed) + len(closed_ids) + 1
        counts["batches"] += 1

    started = time.process_time()
    batch_end = frames[0][0] + batch_ns
    touched: set[int] = set()
    closed: list[object] = []
    for offset, (captured, camera, frame) in enumerate(frames):
        if captured >= batch_end:
            commit(touched, closed)
            touched, closed = set(), []
            batch_end = captured + batch_ns
        raw = reads_pb2.RawRead.FromString(frame)
        partition = zlib.crc32(camera.encode()) % PARTITIONS
        touched.add(partition)
        closed.extend(trackers[partition].add(raw, offset))
    commit(touched, closed)
    cpu = time.process_time() - started
    return {
        "raw_reads": len(frames),
        "passes": passes,
        "cpu_s": round(cpu, 2),
        "cpu_s_per_10k_raw_reads": round(cpu / len(frames) * 10_000, 3),
        "open_tracks_per_camera_at_end": round(sum(t.open_count() for t in trackers) / cameras, 1),
        **counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--cameras", type=int, default=200)
    parser.add_argument("--batch-ms", type=float, default=100)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=50_000,
        help="gen0 GC threshold, as the service sets it (0: default)",
    )
    args = parser.parse_args()
    if args.gc_threshold:
        gc.freeze()
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    if args.profile:
        profiler = cProfile.Profile()
        result = profiler.runcall(run, args.rate, args.seconds, args.cameras, args.batch_ms)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    else:
        result = run(args.rate, args.seconds, args.cameras, args.batch_ms)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

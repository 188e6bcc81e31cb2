"""Vehicle-pass tracking and consensus: pure logic, no Kafka.

A `PassTracker` holds the open tracks of one source partition (several cameras). A track groups the raw
reads (one per plate per frame) of one vehicle pass in front of one camera:

* A raw read joins an open track of its camera when it is at most `pass_gap_s` of event time
  (captured_at) after the track's last frame, is not from a frame the track already has, and either its
  text equals one of the track's recent texts, or its text is within edit distance 1 (plates up to 5
  characters) or 2 (longer; up to half the characters) of one of them and its box continues the track's
  motion (overlapping or within two plate sizes of the last box, not moving backwards). Otherwise it
  starts a new track.
* Each camera has an event-time watermark (newest captured_at seen). A track closes once the watermark
  is more than `pass_gap_s` past its last frame. The service also closes every track of a partition
  after `idle_close_s` of wall clock without input (`close_all`), so the last vehicle of a clip is read.
* State is persisted incrementally: the tracker records which tracks a batch created or changed and
  which persisted tracks it closed; `take_changes` hands those over (the service writes one record per
  changed track and a tombstone per closed one) and `partition_state` is the small per-partition rest
  (camera watermarks). `PassTracker.restore` rebuilds a tracker from those records.

`build_read` turns a closed track into a `Read`: per-position character voting weighted by confidence over
every frame's candidates of the winning text length (fallback: the best single text), the region grammar on
the result (with the camera's region hint, if the registry gives one: without it the grammar never rewrites
the text, so the recognizer's own look-alike choice stands), the best frame's crop/thumbnail/box/vehicle,
first/last seen, frame count and direction of travel (see `direction_of_travel`).

read_id = 12 hex digits of the founding raw read's captured_at in epoch ms + 12 hex digits of
blake2b(camera_id, frame_sequence, plate_index, captured_at in ns) of that same raw read: ids sort by
time and replaying the same raw reads gives the same ids. Two ids can only collide within one
millisecond, where 48 hash bits make it negligible (about 1e-15 for a pair); more bits would only cost
storage (the id is the largest column per stored read).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.pb.platewatch.v1 import common_pb2, reads_pb2
from services.normalizer.grammar import CleanPlate, PlateGrammar, strip_text

# Frames kept per track for voting; a parked car would otherwise grow a track without bound.
MAX_VOTING_FRAMES = 48
# Recent frames whose texts a new raw read is compared with.
RECENT_TEXTS = 3
# Below this much motion (fraction of the frame) the direction is reported as unknown ("").
MIN_MOTION = 0.02
CANDIDATES_PER_READ = 5

BoxTuple = tuple[int, int, int, int]


@dataclass
class Candidate:
    text: str  # stripped: uppercase ASCII letters and digits only
    confidence: float
    char_confidences: list[float]


@dataclass
class Observation:
    """What a track keeps of one raw read."""

    captured_at_ns: int
    frame_sequence: int
    plate_index: int
    box: BoxTuple
    candidates: list[Candidate]
    # Source offset of the raw read, so the best frame's images can be fetched again after a restart.
    offset: int
    # The region the words printed around the plate named in this frame (`RawRead.printed_region`).
    printed_region: str = ""
    # The top candidate's text and confidence ("" and 0.0 without candidates); candidates never change.
    text: str = field(init=False)
    confidence: float = field(init=False)
    # This observation's part of a track's state record, encoded once (see `track_state_json`).
    _json: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        top = self.candidates[0] if self.candidates else None
        self.text = top.text if top else ""
        self.confidence = top.confidence if top else 0.0

    def state_json(self) -> str:
        if self._json is None:
            self._json = json.dumps(_obs_to_list(self), separators=(",", ":"))
        return self._json


@dataclass(eq=False)
class Track:
    camera_id: str
    agency_id: str
    founder: Observation
    frame_width: int
    frame_height: int
    first_box: BoxTuple
    last: Observation
    best: Observation
    first_seen_ns: int
    last_seen_ns: int
    frames: int = 1
    votes: list[Observation] = field(default_factory=list)
    # The best frame's full raw read (crop, thumbnail, vehicle); None after a restore until re-fetched.
    best_raw: reads_pb2.RawRead | None = None
    # Whether a committed state record of this track may exist (closing it then needs a tombstone).
    persisted: bool = False
    # Plate and region of the early read emitted for this pass (None: none yet); see `early_plate`.
    early_plate: str | None = None
    early_region: str = ""
    # Derived from `votes` and `best` (kept up to date by `add`) so that matching a raw read against the
    # open tracks of its camera needs no per-comparison work: texts of the recent frames and the best
    # one with their character masks, and the recent frames' sequence numbers.
    match_texts: frozenset[str] = field(default_factory=frozenset, repr=False)
    match_masks: list[tuple[str, int]] = field(default_factory=list, repr=False)
    match_union: int = field(default=0, repr=False)  # every character of `match_texts`
    recent_frames: frozenset[int] = field(default_factory=frozenset, repr=False)
    # Texts under which the tracker's exact-text index lists this track.
    indexed_texts: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self._refresh_match_keys()

    def _refresh_match_keys(self) -> None:
        recent = self.votes[-RECENT_TEXTS:]
        texts = {v.text for v in recent}
        texts.add(self.best.text)
        self.match_texts = frozenset(texts)
        self.match_masks = [(text, char_mask(text)) for text in texts]
        union = 0
        for _, mask in self.match_masks:
            union |= mask
        self.match_union = union
        self.recent_frames = frozenset(v.frame_sequence for v in recent)

    @cached_property
    def read_id(self) -> str:
        return make_read_id(
            self.camera_id, self.founder.frame_sequence, self.founder.plate_index, self.founder.captured_at_ns
        )

    def add(self, obs: Observation, raw: reads_pb2.RawRead | None) -> None:
        self.frames += 1
        self.first_seen_ns = min(self.first_seen_ns, obs.captured_at_ns)
        if obs.captured_at_ns >= self.last_seen_ns:
            self.last_seen_ns = obs.captured_at_ns
            self.last = obs
        if obs.confidence > self.best.confidence:
            self.best, self.best_raw = obs, raw
        self.votes.append(obs)
        if len(self.votes) > MAX_VOTING_FRAMES:
            # Drop the least confident frame; the best one always has the highest confidence.
            weakest = min(range(len(self.votes)), key=lambda i: self.votes[i].confidence)
            del self.votes[weakest]
        self._refresh_match_keys()


def make_read_id(camera_id: str, frame_sequence: int, plate_index: int, captured_at_ns: int) -> str:
    digest = hashlib.blake2b(
        f"{camera_id}\x1f{frame_sequence}\x1f{plate_index}\x1f{captured_at_ns}".encode(), digest_size=6
    ).hexdigest()
    epoch_ms = captured_at_ns // 1_000_000
    return f"{epoch_ms & 0xFFFFFFFFFFFF:012x}{digest}"


def char_mask(text: str) -> int:
    """The set of characters of a stripped text (A-Z, 0-9) as bits: `(a & ~b).bit_count()` is how many
    distinct characters of `a` are missing from `b`, a lower bound of their edit distance."""
    mask = 0
    for char in text:
        mask |= 1 << (ord(char) & 63)
    return mask


def timestamp_ns(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000_000 + ts.nanos


def ns_timestamp(ns: int) -> Timestamp:
    return Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Levenshtein distance. With `limit`, any distance above it is returned as `limit + 1`, which lets
    the (hot) comparison of a raw read with every open track of its camera stop early."""
    if a == b:
        return 0
    # Cheap lower bounds first: the length difference, and the characters of `a` missing from `b` (each
    # needs its own substitution or deletion).
    if limit is not None and (abs(len(a) - len(b)) > limit or len(set(a).difference(b)) > limit):
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        best = left = i
        for j, char_b in enumerate(b):
            # min(insert, delete, substitute) without builtins.min: this loop is the normalizer's hot spot.
            left += 1
            up = previous[j + 1] + 1
            if up < left:
                left = up
            diagonal = previous[j] + (char_a != char_b)
            if diagonal < left:
                left = diagonal
            if left < best:
                best = left
            current.append(left)
        if limit is not None and best > limit:
            return limit + 1
        previous = current
    distance = previous[-1]
    return distance if limit is None or distance <= limit else limit + 1


def _strip_candidate(candidate: common_pb2.TextCandidate) -> Candidate:
    confs = list(candidate.char_confidences)
    text = candidate.text
    if text.isascii() and text.isalnum() and not text.islower() and text == text.upper():
        # Already clean (the usual case): nothing to strip.
        return Candidate(text, candidate.confidence, confs if len(confs) == len(text) else [])
    if len(confs) != len(candidate.text):
        return Candidate(strip_text(candidate.text), candidate.confidence, [])
    chars: list[str] = []
    kept: list[float] = []
    for char, conf in zip(candidate.text, confs, strict=True):
        for upper in strip_text(char):
            chars.append(upper)
            kept.append(conf)
    return Candidate("".join(chars), candidate.confidence, kept)


def observe(raw: reads_pb2.RawRead, offset: int) -> Observation:
    candidates = [c for c in (_strip_candidate(c) for c in raw.candidates) if c.text]
    return Observation(
        captured_at_ns=timestamp_ns(raw.captured_at),
        frame_sequence=raw.frame_sequence,
        plate_index=raw.plate_index,
        box=(raw.box.x, raw.box.y, raw.box.width, raw.box.height),
        candidates=candidates,
        offset=offset,
        printed_region=raw.printed_region.strip().upper(),
    )


def _centre(box: BoxTuple) -> tuple[float, float]:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


def _box_continues(track: Track, box: BoxTuple) -> bool:
    """The box overlaps or sits within two plate sizes of the last one, not moving backwards."""
    last = track.last.box
    (lx, ly), (nx, ny) = _centre(last), _centre(box)
    reach = 2 * max(last[2], last[3], 1)
    if math.hypot(nx - lx, ny - ly) > reach:
        return False
    if track.frames >= 2:
        (fx, fy) = _centre(track.first_box)
        # The step must not reverse the motion so far (dot product of steps >= 0, with slack).
        if (lx - fx) * (nx - lx) + (ly - fy) * (ny - ly) < -0.25 * reach * reach:
            return False
    return True


def _max_text_distance(text: str) -> int:
    return 1 if len(text) <= 5 else 2


class PassTracker:
    """Open tracks of one source partition; see the module docstring."""

    def __init__(self, pass_gap_s: float) -> None:
        self.pass_gap_ns = int(pass_gap_s * 1_000_000_000)
        self.tracks: dict[str, list[Track]] = defaultdict(list)
        self.watermarks: dict[str, int] = {}
        # Per camera, a lower bound of its open tracks' last_seen_ns: most raw reads close nothing, and
        # this spares them a scan of the camera's open tracks.
        self._oldest_seen: dict[str, int] = {}
        # (camera, text) -> open tracks that had that text among their `match_texts` (a superset: the
        # match verifies), so a raw read reading the same as its track finds it without a scan.
        self._by_text: dict[tuple[str, str], set[Track]] = {}
        self._open = 0
        # Since the last `take_changes`: open tracks created or changed (by read_id), and the read_ids of
        # persisted tracks that closed.
        self._changed: dict[str, Track] = {}
        self._closed_ids: set[str] = set()

    def open_count(self) -> int:
        return self._open

    def add(self, raw: reads_pb2.RawRead, offset: int) -> list[Track]:
        """Feed one raw read; returns the tracks of its camera that this read's event time closed."""
        obs = observe(raw, offset)
        camera = raw.camera_id
        watermark = max(self.watermarks.get(camera, obs.captured_at_ns), obs.captured_at_ns)
        self.watermarks[camera] = watermark
        open_tracks = self.tracks[camera]
        horizon = watermark - self.pass_gap_ns
        closed: list[Track] = []
        if open_tracks and self._oldest_seen.get(camera, horizon) < horizon:
            closed = [t for t in open_tracks if t.last_seen_ns < horizon]
            if closed:
                open_tracks[:] = [t for t in open_tracks if t.last_seen_ns >= horizon]
                self._forget(closed)
            if open_tracks:
                self._oldest_seen[camera] = min(t.last_seen_ns for t in open_tracks)
        if obs.candidates:
            track = self._match(camera, open_tracks, obs)
            if track is None:
                track = self._start(raw, obs)
                if not open_tracks:
                    self._oldest_seen[camera] = track.last_seen_ns
                open_tracks.append(track)
                self._open += 1
            else:
                track.add(obs, raw)
            self._index(track)
            self._changed[track.read_id] = track
        if not open_tracks:
            del self.tracks[camera]
            self._oldest_seen.pop(camera, None)
        return closed

    def close_all(self) -> list[Track]:
        closed = [t for tracks in self.tracks.values() for t in tracks]
        self.tracks.clear()
        self._oldest_seen.clear()
        self._by_text.clear()
        for track in closed:
            track.indexed_texts = set()
        self._forget(closed)
        return closed

    def _index(self, track: Track) -> None:
        for text in track.match_texts:
            if text not in track.indexed_texts:
                track.indexed_texts.add(text)
                self._by_text.setdefault((track.camera_id, text), set()).add(track)

    def _unindex(self, track: Track) -> None:
        for text in track.indexed_texts:
            key = (track.camera_id, text)
            bucket = self._by_text.get(key)
            if bucket is not None:
                bucket.discard(track)
                if not bucket:
                    del self._by_text[key]
        track.indexed_texts = set()

    def _forget(self, closed: list[Track]) -> None:
        self._open -= len(closed)
        for track in closed:
            self._unindex(track)
            self._changed.pop(track.read_id, None)
            if track.persisted:
                self._closed_ids.add(track.read_id)

    def _start(self, raw: reads_pb2.RawRead, obs: Observation) -> Track:
        return Track(
            camera_id=raw.camera_id,
            agency_id=raw.agency_id,
            founder=obs,
            frame_width=raw.frame_width,
            frame_height=raw.frame_height,
            first_box=obs.box,
            last=obs,
            best=obs,
            first_seen_ns=obs.captured_at_ns,
            last_seen_ns=obs.captured_at_ns,
            votes=[obs],
            best_raw=raw,
        )

    def _match(self, camera: str, tracks: list[Track], obs: Observation) -> Track | None:
        """The open track `obs` continues: the smallest text distance, then the nearest box."""
        best: tuple[int, float, Track] | None = None
        limit = max(_max_text_distance(obs.text), len(obs.text) // 2)
        gap = self.pass_gap_ns
        captured = obs.captured_at_ns
        frame = obs.frame_sequence
        texts = [c.text for c in obs.candidates[:2]]
        nx, ny = _centre(obs.box)
        # A track is usable when not too far apart in time and not holding a plate of the same frame
        # (two plates in one frame are two vehicles). Distance 0 beats any similar text, so the common
        # case (a pass's next frame reads the same) is an index lookup, no scan, no edit distance.
        for text in texts:
            for track in self._by_text.get((camera, text), ()):
                if (
                    text in track.match_texts
                    and abs(captured - track.last_seen_ns) <= gap
                    and frame not in track.recent_frames
                ):
                    lx, ly = _centre(track.last.box)
                    score = (0, math.hypot(nx - lx, ny - ly))
                    if best is None or score < best[:2]:
                        best = (*score, track)
        if best is not None:
            return best[2]
        # (text, length, character mask) of the candidates, computed once per raw read.
        wanted = [(text, len(text), char_mask(text)) for text in texts]
        # Pre-filter in one comprehension (the fuzzy search scans every open track of the camera): a
        # track can only be within `limit` when at most `limit` distinct characters of a candidate are
        # missing from all of its texts together.
        if len(wanted) == 1:
            mask = wanted[0][2]
            tracks = [t for t in tracks if (mask & ~t.match_union).bit_count() <= limit]
        else:
            masks = [m for _, _, m in wanted]
            tracks = [t for t in tracks if min((m & ~t.match_union).bit_count() for m in masks) <= limit]
        for track in tracks:
            if abs(captured - track.last_seen_ns) > gap or frame in track.recent_frames:
                continue
            distance = limit + 1
            for text, length, mask in wanted:
                for track_text, track_mask in track.match_masks:
                    # Cheap lower bounds before the edit distance: the length difference, and the
                    # characters missing from the track's text (each needs its own edit).
                    if abs(length - len(track_text)) > limit or (mask & ~track_mask).bit_count() > limit:
                        continue
                    distance = min(distance, edit_distance(text, track_text, limit))
            # A similar text must also continue the track's motion: two vehicles in a row can carry
            # plates one or two characters apart (fleets, sequential issues), and only the box tells
            # them apart. (The same text may reappear anywhere: occlusion, detector flicker.)
            if distance > limit or not _box_continues(track, obs.box):
                continue
            lx, ly = _centre(track.last.box)
            score = (distance, math.hypot(nx - lx, ny - ly))
            if best is None or score < best[:2]:
                best = (*score, track)
        return best[2] if best else None

    def take_early(
        self,
        grammar: PlateGrammar,
        confident: float,
        min_frames: int,
        region_of: Callable[[str], str | None] | None = None,
    ) -> list[tuple[Track, CleanPlate]]:
        """Open tracks changed since the last `take_changes` that now deserve an early read (see
        `early_plate`) and had none; each is marked (`early_plate`) so it gets only one. Call before
        `take_changes`: the marks are part of the state written with the early reads. `region_of`
        gives a camera id's region hint for the grammar (None: unknown)."""
        ready: list[tuple[Track, CleanPlate]] = []
        for track in self._changed.values():
            if track.early_plate is not None or track.frames < min_frames:
                continue
            # The printed region, when named, is the grammar's hint and the read's region (`build_read`).
            printed = printed_region(track)
            hint = printed or (region_of(track.camera_id) if region_of is not None else None)
            plate = early_plate(track, grammar, confident, hint)
            if plate is not None:
                track.early_plate, track.early_region = plate.text, printed or plate.region
                ready.append((track, plate))
        return ready

    # -- incremental state (the service stores it in NORMALIZER_STATE) --

    def take_changes(self) -> tuple[list[Track], list[str]]:
        """The open tracks created or changed and the read_ids of persisted tracks closed since the last
        call; the caller writes them (`track_state` / a tombstone) in the transaction it commits next.
        Tracks handed over count as persisted. If that transaction fails, the tracker must be rebuilt
        from the committed state (`restore`), as this bookkeeping is then wrong."""
        changed = list(self._changed.values())
        for track in changed:
            track.persisted = True
        closed_ids = sorted(self._closed_ids)
        self._changed = {}
        self._closed_ids = set()
        return changed, closed_ids

    def partition_state(self) -> dict[str, Any]:
        """The per-partition part of the state: the cameras' event-time watermarks."""
        return {"v": 2, "watermarks": self.watermarks}

    @classmethod
    def restore(
        cls, pass_gap_s: float, partition: dict[str, Any] | None, tracks: list[dict[str, Any]]
    ) -> PassTracker:
        """Rebuild a tracker from its committed `partition_state` and `track_state` records. A version-1
        whole-partition snapshot as `partition` is accepted too: its tracks are loaded and marked changed,
        so the next transaction rewrites them as per-track records."""
        tracker = cls(pass_gap_s)
        partition = partition or {}
        tracker.watermarks = {k: int(v) for k, v in partition.get("watermarks", {}).items()}
        for item in tracks:
            track = _track_from_dict(item)
            track.persisted = True
            tracker.tracks[track.camera_id].append(track)
        for item in partition.get("tracks", []):  # version 1
            track = _track_from_dict(item)
            tracker.tracks[track.camera_id].append(track)
            tracker._changed[track.read_id] = track
        tracker._open = sum(len(t) for t in tracker.tracks.values())
        tracker._oldest_seen = {
            camera: min(t.last_seen_ns for t in tracks) for camera, tracks in tracker.tracks.items() if tracks
        }
        for open_tracks in tracker.tracks.values():
            for open_track in open_tracks:
                tracker._index(open_track)
        return tracker

    def missing_best_frames(self) -> list[Track]:
        return [t for tracks in self.tracks.values() for t in tracks if t.best_raw is None]


def _obs_to_list(obs: Observation) -> list[Any]:
    return [
        obs.captured_at_ns,
        obs.frame_sequence,
        obs.plate_index,
        list(obs.box),
        [[c.text, round(c.confidence, 5), [round(x, 4) for x in c.char_confidences]] for c in obs.candidates],
        obs.offset,
    ]


def _obs_from_list(item: list[Any], printed_region: str = "") -> Observation:
    captured, sequence, index, box, candidates, offset = item
    return Observation(
        int(captured),
        int(sequence),
        int(index),
        (int(box[0]), int(box[1]), int(box[2]), int(box[3])),
        [Candidate(text, float(conf), [float(x) for x in chars]) for text, conf, chars in candidates],
        int(offset),
        printed_region,
    )


def _printed_state(track: Track) -> dict[str, Any]:
    """The votes' printed regions, under a key of their own and only when one is set: an observation
    stays six items, so a normalizer of the release before still restores these records."""
    printed = [vote.printed_region for vote in track.votes]
    return {"printed": printed} if any(printed) else {}


def track_state(track: Track) -> dict[str, Any]:
    """JSON-able state of one open track (the best frame's images are not kept, only its offset)."""
    return {
        "camera_id": track.camera_id,
        "agency_id": track.agency_id,
        "founder": _obs_to_list(track.founder),
        "frame_size": [track.frame_width, track.frame_height],
        "first_box": list(track.first_box),
        "last": _obs_to_list(track.last),
        "best": _obs_to_list(track.best),
        "seen": [track.first_seen_ns, track.last_seen_ns],
        "frames": track.frames,
        "votes": [_obs_to_list(v) for v in track.votes],
        **({"early": [track.early_plate, track.early_region]} if track.early_plate is not None else {}),
        **_printed_state(track),
    }


def track_state_json(track: Track) -> bytes:
    """`track_state` encoded as compact JSON, reusing each observation's encoding (a track's frames
    are written again in every transaction that changes the track)."""
    head = json.dumps(
        {
            "camera_id": track.camera_id,
            "agency_id": track.agency_id,
            "frame_size": [track.frame_width, track.frame_height],
            "first_box": list(track.first_box),
            "seen": [track.first_seen_ns, track.last_seen_ns],
            "frames": track.frames,
            **({"early": [track.early_plate, track.early_region]} if track.early_plate is not None else {}),
            **_printed_state(track),
        },
        separators=(",", ":"),
    )
    votes = ",".join(v.state_json() for v in track.votes)
    return (
        f'{head[:-1]},"founder":{track.founder.state_json()},"last":{track.last.state_json()},'
        f'"best":{track.best.state_json()},"votes":[{votes}]}}'
    ).encode()


def _track_from_dict(item: dict[str, Any]) -> Track:
    box = item["first_box"]
    return Track(
        camera_id=item["camera_id"],
        agency_id=item["agency_id"],
        founder=_obs_from_list(item["founder"]),
        frame_width=int(item["frame_size"][0]),
        frame_height=int(item["frame_size"][1]),
        first_box=(int(box[0]), int(box[1]), int(box[2]), int(box[3])),
        last=_obs_from_list(item["last"]),
        best=_obs_from_list(item["best"]),
        first_seen_ns=int(item["seen"][0]),
        last_seen_ns=int(item["seen"][1]),
        frames=int(item["frames"]),
        votes=[
            _obs_from_list(v, str(printed))
            for v, printed in zip(
                item["votes"], item.get("printed") or [""] * len(item["votes"]), strict=True
            )
        ],
        best_raw=None,
        early_plate=item["early"][0] if "early" in item else None,
        early_region=item["early"][1] if "early" in item else "",
    )


# -- consensus and the Read --


@dataclass
class Consensus:
    text: str
    confidence: float
    candidates: list[tuple[str, float]]


def consensus(votes: list[Observation]) -> Consensus:
    """Per-position character voting weighted by confidence over the texts of the most supported
    length; confidence = mean winning share per position x mean confidence of the voting frames."""
    texts = {cand.text for obs in votes for cand in obs.candidates}
    if len(texts) == 1:
        # Every frame read the same text (the usual pass): every position's vote is unanimous.
        (text,) = texts
        voters = [obs for obs in votes if obs.candidates]
        confidence = sum(o.confidence for o in voters) / len(voters)
        if len(voters) < 2:
            confidence = max(o.confidence for o in voters)
        return Consensus(text, confidence, [(text, confidence)])
    length_weight: dict[int, float] = defaultdict(float)
    for obs in votes:
        for cand in obs.candidates:
            length_weight[len(cand.text)] += cand.confidence
    if not length_weight:
        return Consensus("", 0.0, [])
    length = max(length_weight, key=lambda n: (length_weight[n], n))
    voters = [obs for obs in votes if obs.candidates and len(obs.text) == length] if len(votes) > 1 else []
    if len(voters) < 2:
        best = max(votes, key=lambda o: o.confidence)
        text, confidence = best.text, best.confidence
    else:
        positions: list[dict[str, float]] = [defaultdict(float) for _ in range(length)]
        for obs in votes:
            for cand in obs.candidates:
                if len(cand.text) != length:
                    continue
                for i, char in enumerate(cand.text):
                    char_conf = cand.char_confidences[i] if cand.char_confidences else 1.0
                    positions[i][char] += cand.confidence * char_conf
        chars: list[str] = []
        shares: list[float] = []
        for weights in positions:
            char = max(weights, key=lambda c: (weights[c], c))
            total = sum(weights.values())
            chars.append(char)
            shares.append(weights[char] / total if total > 0 else 0.0)
        text = "".join(chars)
        mean_share = sum(shares) / len(shares)
        confidence = mean_share * sum(o.confidence for o in voters) / len(voters)
    support: dict[str, float] = defaultdict(float)
    for obs in votes:
        for cand in obs.candidates:
            support[cand.text] += cand.confidence
    others = sorted((t for t in support if t != text), key=lambda t: -support[t])
    alternatives = [(t, support[t] / len(votes)) for t in others[: CANDIDATES_PER_READ - 1]]
    return Consensus(text, confidence, [(text, confidence), *alternatives])


def printed_region(track: Track) -> str:
    """The region most of the pass's frames read printed on the plate (a state's name or slogan);
    "" when none did or two regions tie."""
    counts = Counter(vote.printed_region for vote in track.votes if vote.printed_region).most_common(2)
    if not counts or (len(counts) == 2 and counts[1][1] == counts[0][1]):
        return ""
    return counts[0][0]


def early_plate(
    track: Track, grammar: PlateGrammar, confident: float, region_hint: str | None = None
) -> CleanPlate | None:
    """The plate an early read of this still-open pass may carry, or None when not sure enough yet:
    the consensus text of the frames so far must be grammar-valid (a known plate format, cleaned with
    the camera's `region_hint`) and backed by either one frame with top-candidate confidence >=
    `confident` or two frames agreeing on it."""
    # Cheap necessary condition first: some frame confident enough, or some text read twice.
    tops = [v.text for v in track.votes]
    if not any(v.confidence >= confident for v in track.votes) and len(set(tops)) == len(tops):
        return None
    voted = consensus(track.votes)
    if not voted.text:
        return None
    agreeing = [v for v in track.votes if v.text == voted.text]
    if len(agreeing) < 2 and not any(v.confidence >= confident for v in agreeing):
        return None
    plate = grammar.clean(voted.text, region_hint)
    return plate if plate.format_known else None


def direction_of_travel(
    first_box: BoxTuple, last_box: BoxTuple, frame_width: int, frame_height: int, heading_deg: float | None
) -> str:
    """Compass direction of travel from the plate box's motion and the camera heading.

    Moving up the image or shrinking means driving away from the camera, i.e. along its heading;
    moving down or growing means driving towards it (heading + 180). Sideways motion dominating means
    crossing the view: to the right is heading + 90, to the left heading - 90. The bearing is rounded
    to the nearest of north/east/south/west + "bound"; "" when the heading is unknown or the box
    barely moved (< 2 % of the frame)."""
    if heading_deg is None or frame_width <= 0 or frame_height <= 0:
        return ""
    (fx, fy), (lx, ly) = _centre(first_box), _centre(last_box)
    sideways = (lx - fx) / frame_width
    first_area = max(first_box[2] * first_box[3], 1)
    last_area = max(last_box[2] * last_box[3], 1)
    # Up the image is away; shrinking is away too (weighted so a halving counts like 1/10 of the frame).
    away = (fy - ly) / frame_height + 0.15 * math.log(first_area / last_area)
    if max(abs(sideways), abs(away)) < MIN_MOTION:
        return ""
    if abs(away) >= abs(sideways):
        bearing = heading_deg if away > 0 else heading_deg + 180
    else:
        bearing = heading_deg + 90 if sideways > 0 else heading_deg - 90
    names = ("northbound", "eastbound", "southbound", "westbound")
    return names[round((bearing % 360) / 90) % 4]


def build_read(
    track: Track,
    camera: common_pb2.CameraInfo,
    grammar: PlateGrammar,
    normalized_at_ns: int,
    heading_deg: float | None,
    region_hint: str | None = None,
) -> reads_pb2.Read:
    """The read of a pass; `region_hint` is the camera's region for the grammar (None: unknown, the
    voted text is then kept as it is), unless the plate's printed region says otherwise
    (`printed_region`: it says more than the camera's, as for a Texas car passing an Iowa camera);
    the read names the printed region, else the grammar's."""
    voted = consensus(track.votes)
    printed = printed_region(track)
    plate = grammar.clean(voted.text, printed or region_hint)
    read = reads_pb2.Read(
        read_id=track.read_id,
        plate=plate.text,
        region=printed or plate.region,
        format_known=plate.format_known,
        confidence=voted.confidence,
        camera=camera,
        first_seen=ns_timestamp(track.first_seen_ns),
        last_seen=ns_timestamp(track.last_seen_ns),
        captured_at=ns_timestamp(track.best.captured_at_ns),
        direction=direction_of_travel(
            track.first_box, track.last.box, track.frame_width, track.frame_height, heading_deg
        ),
        box=common_pb2.Box(
            x=track.best.box[0], y=track.best.box[1], width=track.best.box[2], height=track.best.box[3]
        ),
        frames=track.frames,
        normalized_at=ns_timestamp(normalized_at_ns),
    )
    read.candidates.add(text=plate.text, confidence=voted.confidence)
    for text, confidence in voted.candidates[1:]:
        if text != plate.text:
            read.candidates.add(text=text, confidence=confidence)
    if track.best_raw is not None:
        read.crop_jpeg = track.best_raw.crop_jpeg
        read.frame_thumbnail_jpeg = track.best_raw.frame_thumbnail_jpeg
        read.vehicle.CopyFrom(track.best_raw.vehicle)
    return read

"""Train the plate CRNN (conv-only CTC recognizer, ~0.5M parameters at `--width 1`) with JAX + optax,
on CPU or, where one is lent, a GPU (render in worker processes there: `--workers`).

Run (background, lowest priority, one thread; resumes from <out>/latest.pkl when present):

    OMP_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
      nohup nice -n 19 var/recognizer/venv/bin/python -m services.inference.training.train \
      --out var/recognizer/run1 --seed 1 > var/recognizer/run1.log 2>&1 &

To finish a run, resume it with a cosine learning-rate anneal (e.g. `--anneal-from 3000
--anneal-steps 2000 --steps 5000`); the flags apply from the resumed step on.

Batches mix synthetic plates (`render.py`) with the "train" half of the dev crops (`--real-share`,
0 for synthetic only); the "heldout" half is only evaluated (exact-plate accuracy, greedy CTC) every
`--eval-every` steps, and the best checkpoint by held-out accuracy is kept as <out>/best.pkl.
`--validation-fold K` keeps fold K of `--folds` (`datasets.fold_of`) of the train half out of the
real samples and evaluates it too (`val_us`, `val_eu`; best.pkl is then chosen on it): real plates
the run never saw, to compare recipes on without reading the held-out half.
`--real-lines` adds the read path's own cuts of real registrations (`collect_lines --for reader`,
train half only) as a further share of each batch (`--line-share`); the validation fold applies to
them by source file name, and its cuts are evaluated as `val_lines`. It also takes the read path's
cuts of two-row plates in rendered frames (`collect_lines --for rows --split rendered`), all trained on.
To fine-tune a model, copy its `latest.pkl` into a new `--out` and resume there with new flags; for
a shipped model whose checkpoint is gone, `from_onnx.py` makes one from its ONNX.
Dev-set labels listed in `label_errata.csv` (contradicting their plate) are used as corrected.
`--invert-share` turns that share of each batch into light-on-dark samples.
Training-only dependencies: jax, optax (and onnx for export.py), in their own venv.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax
import jax.numpy as jnp
import numpy as np
import optax

from services.inference.training import batches, datasets, render

CLASSES = ["blank", *render.ALPHABET]
MAX_LABEL = 10
BN_EPS = 1e-5
BN_MOMENTUM = 0.99

# (name, kernel h, kernel w, in, out, pad h, pad w, pool after (h, w) or None). Every layer is
# conv (no bias) + batch norm + ReLU except the last (conv with bias -> class logits).
LAYERS: list[tuple[str, int, int, int, int, int, int, tuple[int, int] | None]] = [
    ("c1", 3, 3, 1, 16, 1, 1, (2, 2)),
    ("c2", 3, 3, 16, 32, 1, 1, (2, 2)),
    ("c3", 3, 3, 32, 64, 1, 1, None),
    ("c4", 3, 3, 64, 64, 1, 1, (2, 1)),
    ("c5", 3, 3, 64, 128, 1, 1, None),
    ("c6", 3, 3, 128, 128, 1, 1, (2, 1)),
    ("c7", 2, 3, 128, 160, 0, 1, None),
    ("c8", 1, 5, 160, 160, 0, 2, None),
    ("out", 1, 1, 160, len(CLASSES), 0, 0, None),
]


def scaled_channels(channels: int, width: float) -> int:
    """A hidden layer's channel count times `width` (> 0), rounded half up to a multiple of 8 (at
    least 8; 1.0: as listed)."""
    if width <= 0:
        raise ValueError(f"width must be positive, not {width}")
    return channels if width == 1.0 else max(8, int(channels * width / 8 + 0.5) * 8)


def init_params(key: jax.Array, width: float = 1.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fresh weights for LAYERS, hidden channel counts scaled by `width` (the input's 1 channel and
    the output's classes stay). Export and inference read the sizes from the weights."""
    params: dict[str, Any] = {}
    state: dict[str, Any] = {}
    for name, kh, kw, cin, cout, _, _, _ in LAYERS:
        key, sub = jax.random.split(key)
        cin = cin if cin == 1 else scaled_channels(cin, width)
        cout = cout if name == "out" else scaled_channels(cout, width)
        fan_in = kh * kw * cin
        params[name] = {"w": jax.random.normal(sub, (kh, kw, cin, cout)) * np.sqrt(2.0 / fan_in)}
        if name == "out":
            params[name]["b"] = jnp.zeros((cout,))
        else:
            params[name]["gamma"] = jnp.ones((cout,))
            params[name]["beta"] = jnp.zeros((cout,))
            state[name] = {"mean": jnp.zeros((cout,)), "var": jnp.ones((cout,))}
    return params, state


def batch_norm(
    x: jax.Array, params: dict[str, Any], state: dict[str, Any], train: bool
) -> tuple[jax.Array, dict[str, Any]]:
    """Batch norm over N, H, W of NHWC `x` with `params` gamma/beta; in training the batch's own
    statistics (and the running ones updated), else the running ones. Returns (x, new state)."""
    if train:
        mean = x.mean(axis=(0, 1, 2))
        var = x.var(axis=(0, 1, 2))
        new_state = {
            "mean": BN_MOMENTUM * state["mean"] + (1 - BN_MOMENTUM) * mean,
            "var": BN_MOMENTUM * state["var"] + (1 - BN_MOMENTUM) * var,
        }
    else:
        mean, var = state["mean"], state["var"]
        new_state = state
    return (x - mean) / jnp.sqrt(var + BN_EPS) * params["gamma"] + params["beta"], new_state


def forward(
    params: dict[str, Any], state: dict[str, Any], x: jax.Array, train: bool
) -> tuple[jax.Array, dict[str, Any]]:
    """x: [N, 32, 128, 1] normalized -> logits [N, T, C], updated batch-norm state."""
    new_state = {}
    for name, _, _, _, _, ph, pw, pool in LAYERS:
        x = jax.lax.conv_general_dilated(
            x, params[name]["w"], (1, 1), ((ph, ph), (pw, pw)), dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        if name == "out":
            x = x + params[name]["b"]
            break
        x, new_state[name] = batch_norm(x, params[name], state[name], train)
        x = jax.nn.relu(x)
        if pool is not None:
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, *pool, 1), (1, *pool, 1), "VALID")
    return x[:, 0, :, :], new_state


def encode_labels(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros((len(labels), MAX_LABEL), np.int32)
    paddings = np.ones((len(labels), MAX_LABEL), np.float32)
    for i, label in enumerate(labels):
        for j, ch in enumerate(label[:MAX_LABEL]):
            ids[i, j] = CLASSES.index(ch)
            paddings[i, j] = 0.0
    return ids, paddings


def greedy_decode(logits: np.ndarray) -> list[str]:
    best = logits.argmax(axis=-1)
    texts = []
    for row in best:
        chars = [CLASSES[c] for i, c in enumerate(row) if c != 0 and (i == 0 or c != row[i - 1])]
        texts.append("".join(chars))
    return texts


def trainable(label: str) -> bool:
    """A label the model can be trained to read: non-empty, in the alphabet, at most MAX_LABEL long."""
    return bool(label) and all(ch in render.ALPHABET for ch in label) and len(label) <= MAX_LABEL


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("var/recognizer/run1"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--lr-half-life", type=float, default=30000.0, help="steps")
    parser.add_argument("--steps", type=int, default=200000)
    parser.add_argument(
        "--anneal-from", type=int, default=0, help="step where the cosine anneal starts (0: none)"
    )
    parser.add_argument("--anneal-steps", type=int, default=2000)
    parser.add_argument("--real-share", type=float, default=0.25)
    parser.add_argument(
        "--edge-distractors",
        type=float,
        default=0.0,
        help="share of rendered line crops with a symbol at one end of the line (render.render_sample)",
    )
    parser.add_argument(
        "--side-art",
        type=float,
        default=0.0,
        help="share of rendered US plates with a picture beside the registration (render.render_plate); "
        "0 keeps the stream as it was (above 0 it changes)",
    )
    parser.add_argument(
        "--invert-share",
        type=float,
        default=0.0,
        help="share of each batch's samples inverted (light letters on a dark plate; on the standardized "
        "input that is a sign flip), drawn from (seed, step); 0 keeps the stream as it was",
    )
    parser.add_argument(
        "--width", type=float, default=1.0, help="hidden channel multiplier of a fresh model (1.0: LAYERS)"
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="render processes (0: render in the training process)"
    )
    parser.add_argument(
        "--validation-fold",
        type=int,
        default=-1,
        help="keep this fold (datasets.fold_of, --folds folds) of the train half's crops out of the real "
        "samples and report exact accuracy on it as val_us / val_eu (-1: none, every train crop is used)",
    )
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument(
        "--real-lines",
        type=Path,
        nargs="+",
        default=[],
        action="extend",
        help="pickles of line cuts labelled with their text (collect_lines --for reader --split train, "
        "or --for rows --split rendered)",
    )
    parser.add_argument(
        "--line-share", type=float, default=0.0, help="share of each batch drawn from --real-lines"
    )
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--checkpoint-every", type=int, default=250)
    args = parser.parse_args()
    for share in ("real_share", "edge_distractors", "side_art", "invert_share", "line_share"):
        if not 0.0 <= getattr(args, share) <= 1.0:
            parser.error(f"--{share.replace('_', '-')} is a share, between 0 and 1: {getattr(args, share)}")
    args.out.mkdir(parents=True, exist_ok=True)

    fonts = render.find_fonts()
    dev = datasets.us_crops() + datasets.eu_crops()
    if args.validation_fold >= args.folds:
        parser.error(f"--validation-fold must be below --folds ({args.folds})")
    # Labels that contradict their plate are trained (and scored) as the plate shows them.
    errata = datasets.load_errata(datasets.ERRATA_FILE)
    real_train = []
    # (key in the log, crop, truth): "heldout_us"/"heldout_eu" the held-out half, "val_us"/"val_eu"
    # the validation fold of the train half.
    evaluated: list[tuple[str, np.ndarray, str]] = []
    for item in dev:
        crop = item.load()
        if crop is None:
            continue
        truth = errata.get((item.name, datasets.plate_key(item.plate)), item.plate)
        if item.split != "train":
            evaluated.append((f"heldout_{item.dataset}", crop, truth))
        elif args.validation_fold >= 0 and datasets.fold_of(item.name, args.folds) == args.validation_fold:
            evaluated.append((f"val_{item.dataset}", crop, truth))
        elif trainable(truth):
            real_train.append((crop, truth))
    line_train = []
    for path in args.real_lines:
        with path.open("rb") as handle:
            lines = pickle.load(handle)
        if (lines.get("split"), lines.get("for")) not in (("train", "reader"), ("rendered", "rows")):
            parser.error(
                f"{path} holds {lines.get('split')!r} lines for the {lines.get('for', 'classifier')}, "
                "not the train half's for the reader (collect_lines --for reader --split train) nor "
                "rendered two-row plates (collect_lines --for rows --split rendered)"
            )
        rendered = lines["split"] == "rendered"
        for cut, text, source in zip(lines["cuts"], lines["labels"], lines["sources"], strict=True):
            if not trainable(text):
                continue
            # The validation fold is of the dev sets' train half; rendered lines are all trained on.
            if (
                not rendered
                and args.validation_fold >= 0
                and datasets.fold_of(source, args.folds) == args.validation_fold
            ):
                evaluated.append(("val_lines", cut, text))
            else:
                line_train.append((cut, text))
    evaluated_inputs = batches.to_input([c for _, c, _ in evaluated])

    base_schedule = optax.warmup_exponential_decay_schedule(0.0, args.lr, 300, int(args.lr_half_life), 0.5)

    def schedule(count: Any) -> Any:
        """The base schedule, annealed by a cosine to 2% over --anneal-steps from --anneal-from."""
        if not args.anneal_from:
            return base_schedule(count)
        progress = jnp.clip((count - args.anneal_from) / args.anneal_steps, 0.0, 1.0)
        return base_schedule(count) * (0.02 + 0.98 * 0.5 * (1.0 + jnp.cos(jnp.pi * progress)))

    optimizer = optax.chain(optax.clip_by_global_norm(5.0), optax.adam(schedule))

    latest = args.out / "latest.pkl"
    if latest.exists():
        with latest.open("rb") as handle:
            ckpt = pickle.load(handle)
        params, bn_state, opt_state, step, best_acc = (
            ckpt["params"],
            ckpt["state"],
            ckpt["opt_state"],
            ckpt["step"],
            ckpt["best_acc"],
        )
        if opt_state is None:  # a checkpoint made from an exported model (from_onnx.py)
            opt_state = optimizer.init(params)
    else:
        params, bn_state = init_params(jax.random.PRNGKey(args.seed), args.width)
        opt_state = optimizer.init(params)
        step, best_acc = 0, -1.0
    log = (args.out / "train.jsonl").open("a")

    def loss_fn(p, s, x, ids, label_pad):  # type: ignore[no-untyped-def]
        logits, new_s = forward(p, s, x, train=True)
        logit_pad = jnp.zeros(logits.shape[:2])
        loss = optax.ctc_loss(logits, logit_pad, ids, label_pad, blank_id=0).mean()
        return loss, new_s

    @jax.jit
    def train_step(p, s, o, x, ids, label_pad):  # type: ignore[no-untyped-def]
        (loss, new_s), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, s, x, ids, label_pad)
        updates, o = optimizer.update(grads, o, p)
        return optax.apply_updates(p, updates), new_s, o, loss

    @jax.jit
    def infer(p, s, x):  # type: ignore[no-untyped-def]
        return forward(p, s, x, train=False)[0]

    def evaluate() -> dict[str, float]:
        logits = np.concatenate(
            [
                np.asarray(infer(params, bn_state, evaluated_inputs[i : i + 64]))
                for i in range(0, len(evaluated_inputs), 64)
            ]
        )
        texts = greedy_decode(logits)
        result: dict[str, float] = {}
        for key in dict.fromkeys(k for k, _, _ in evaluated):
            rows = [t == truth for (k, _, truth), t in zip(evaluated, texts, strict=True) if k == key]
            result[key] = round(sum(rows) / len(rows), 4)
            result[f"{key}_n"] = len(rows)
        return result

    def save(path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            pickle.dump(
                {
                    "params": jax.device_get(params),
                    "state": jax.device_get(bn_state),
                    "opt_state": jax.device_get(opt_state),
                    "step": step,
                    "best_acc": best_acc,
                    "args": {k: str(v) for k, v in vars(args).items()},
                },
                handle,
            )
        tmp.replace(path)

    if latest.exists() and float(ckpt["args"].get("width", "1.0")) != args.width:
        print(f"--width {args.width} ignored: resuming {latest} at width {ckpt['args'].get('width', '1.0')}")
    stream = batches.BatchStream(
        seed=args.seed,
        batch=args.batch,
        real_share=args.real_share,
        edge_distractors=args.edge_distractors,
        steps=args.steps,
        fonts=fonts,
        real_train=real_train,
        workers=args.workers,
        line_share=args.line_share,
        line_train=line_train,
        side_art=args.side_art,
    )
    try:
        losses: list[float] = []
        started = time.monotonic()
        while step < args.steps:
            inputs, labels = stream.batch(step)
            if args.invert_share > 0:
                # The input is standardized per image (model_io.crnn_input), so inverting the crop
                # (255 - grey) flips its sign (to within a grey level of rounding).
                flip = np.random.default_rng([args.seed, step, 7]).random(len(inputs)) < args.invert_share
                inputs = np.where(flip[:, None, None, None], -inputs, inputs)
            ids, label_pad = encode_labels(labels)
            params, bn_state, opt_state, loss = train_step(
                params, bn_state, opt_state, inputs, ids, label_pad
            )
            step += 1
            losses.append(float(loss))
            if step % 50 == 0:
                elapsed = time.monotonic() - started
                record: dict[str, Any] = {
                    "step": step,
                    "loss": round(float(np.mean(losses)), 4),
                    "lr": float(schedule(step)),
                    "samples_per_s": round(50 * args.batch / max(elapsed, 1e-6), 1),
                }
                losses, started = [], time.monotonic()
                if step % args.eval_every == 0:
                    record.update(evaluate())
                    # best.pkl: by the validation fold when there is one, else by the held-out half.
                    prefix = "val" if args.validation_fold >= 0 else "heldout"
                    accuracy = record.get(f"{prefix}_us", 0.0) + record.get(f"{prefix}_eu", 0.0)
                    if accuracy > best_acc:
                        best_acc = accuracy
                        save(args.out / "best.pkl")
                        record["best"] = True
                log.write(json.dumps(record) + "\n")
                log.flush()
                print(json.dumps(record), flush=True)
            if step % args.checkpoint_every == 0:
                save(latest)
        save(latest)
    finally:
        stream.close()


if __name__ == "__main__":
    main()

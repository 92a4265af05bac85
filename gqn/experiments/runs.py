"""Training runs of an experiment: a config trained to ``steps`` in chunks of ``every`` steps.

After each chunk the caller scores the chunk's checkpoint (metrics against training steps, as
the seeds' figures plot them). Rerunning an experiment resumes its runs: chunks already trained
are handed back from their checkpoints with the training time recorded when they were made
(``chunks.json`` in the run directory, written atomically after each chunk), never retrained.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gqn.io import atomic_write
from gqn.models.loading import find_latest
from gqn.run_config import load_run_config
from gqn.train.trainer import train

CHUNKS_FILE = "chunks.json"


@dataclass(frozen=True)
class Chunk:
    """One trained chunk: the step reached, the wall and CPU seconds of training up to it
    (summed over the chunks, start-up included) and its checkpoint."""

    step: int
    train_seconds: float
    cpu_seconds: float
    checkpoint: Path


def _recorded(run_dir: Path) -> dict[int, Chunk]:
    path = run_dir / CHUNKS_FILE
    if not path.exists():
        return {}
    chunks = {}
    for row in json.loads(path.read_text()):
        chunk = Chunk(**{**row, "checkpoint": Path(row["checkpoint"])})
        if chunk.checkpoint.exists():
            chunks[chunk.step] = chunk
    return chunks


def _record(run_dir: Path, chunks: dict[int, Chunk]) -> None:
    rows = [{**asdict(c), "checkpoint": str(c.checkpoint)} for _, c in sorted(chunks.items())]
    with atomic_write(run_dir / CHUNKS_FILE) as f:
        f.write((json.dumps(rows, indent=1) + "\n").encode())


def train_in_chunks(
    config_path: str | Path,
    overrides: Sequence[str],
    run_dir: str | Path,
    steps: int,
    every: int,
) -> Iterator[Chunk]:
    """Train the config at ``config_path`` (with ``key=value`` ``overrides``) into ``run_dir``
    up to ``steps``, yielding a :class:`Chunk` every ``every`` steps (and at ``steps``).

    The learning-rate and sigma schedules are the config's own (``optim.*``), so chunking does
    not change the run; every chunk's checkpoint is kept. Raises ``ValueError`` when a chunk
    stops early (a diverged or interrupted run), naming the run and its message.
    """
    if steps < 1 or every < 1:
        raise ValueError(f"steps and every must be >= 1, got steps={steps}, every={every}")
    run_dir = Path(run_dir)
    marks = [*range(every, steps, every), steps]
    chunks = _recorded(run_dir)
    train_s = cpu_s = 0.0
    for mark in marks:
        if mark in chunks:
            chunk = chunks[mark]
            train_s, cpu_s = chunk.train_seconds, chunk.cpu_seconds
            yield chunk
            continue
        config = load_run_config(
            config_path,
            [
                *overrides,
                f"out_dir={run_dir}",
                f"optim.max_steps={mark}",
                f"log.checkpoint_every={every}",
                f"log.keep_last={len(marks) + 1}",
            ],
        )
        wall, cpu = time.perf_counter(), time.process_time()
        result = train(config, resume=find_latest(run_dir) is not None)
        train_s += time.perf_counter() - wall
        cpu_s += time.process_time() - cpu
        if result.status != "finished" or result.step != mark or result.checkpoint is None:
            raise ValueError(f"run {run_dir} stopped at step {result.step}: {result.message}")
        chunks[mark] = Chunk(mark, train_s, cpu_s, Path(result.checkpoint))
        _record(run_dir, chunks)
        yield chunks[mark]


def chunk_scores(
    checkpoint: Path, data: str | Path, out: Path, settings: dict[str, Any]
) -> dict[str, Any]:
    """``gqn eval``'s result for a chunk's checkpoint on the store ``data``
    (:func:`gqn.eval.evaluate.evaluate_checkpoint` with ``settings``, written to ``out``),
    reused from ``out/eval.json`` when that was made from this checkpoint with these settings."""
    from gqn.eval.evaluate import evaluate_checkpoint

    stored = out / "eval.json"
    if stored.exists():
        result = json.loads(stored.read_text())
        if result.get("checkpoint") == str(checkpoint) and result.get("settings") == settings:
            return result
    return evaluate_checkpoint(checkpoint, data, out, record={"settings": settings}, **settings)

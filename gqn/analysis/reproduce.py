"""``gqn reproduce``: decide the seeds' claims (:data:`CLAIMS`: the analyses' claims of
:mod:`gqn.analysis.claims` and the experiments' of :mod:`gqn.analysis.experiment_claims`) on one
checkpoint — one line per claim: the claim, its seed and figure, the measured number and whether
it holds at this scale; also ``reproduce.json`` / ``reproduce.md``.

Each analysis a selected claim reads runs once (default options, ``--scenes`` where the
analysis has it) and writes its own outputs into the same directory; a claim that reads an
experiment uses the ``NAME.json`` that ``gqn experiment NAME --out DIR`` left there, and is
"not measured" when there is none. A claim whose analysis does not apply to the model (scene
algebra on a model without a per-scene code) is "not applicable", with the reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gqn.analysis import default_options, run_analysis
from gqn.analysis.claims import CLAIMS as ANALYSIS_CLAIMS
from gqn.analysis.claims import Claim
from gqn.analysis.common import NotApplicable
from gqn.analysis.experiment_claims import EXPERIMENT_CLAIMS
from gqn.experiments.report import write_report

CLAIMS: list[Claim] = [*ANALYSIS_CLAIMS, *EXPERIMENT_CLAIMS]
# Where the experiments write their JSON by default (their --out): searched after --out.
EXPERIMENT_RESULTS = ("runs/multiscale-compare", "runs/dice/report", "runs/narratives/results")
NOT_APPLICABLE = "not_applicable"  # the key of the record of an analysis that does not apply


def select(names: list[str] | None) -> list[Claim]:
    """The claims named (all when ``names`` is empty), in :data:`CLAIMS` order."""
    known = {c.name for c in CLAIMS}
    unknown = sorted(set(names or ()) - known)
    if unknown:
        raise ValueError(f"unknown claim(s) {unknown}; valid claims: {sorted(known)}")
    return [c for c in CLAIMS if not names or c.name in names]


def _record(
    claim: Claim,
    checkpoint: str | os.PathLike,
    data: str | os.PathLike | None,
    out: Path,
    overrides: dict[str, Any],
    results: Sequence[Path],
) -> dict[str, Any] | None:
    """The record a claim reads: its analysis run now, or its experiment's JSON, the first found
    in ``out`` and then ``results`` (None: absent)."""
    if claim.kind == "analysis":
        options = default_options(claim.target, **overrides)
        try:
            return run_analysis(claim.target, checkpoint, data, out, options)
        except NotApplicable as e:
            return {NOT_APPLICABLE: str(e)}
    for folder in (out, *results):
        path = Path(folder) / f"{claim.target}.json"
        if path.exists():
            return json.loads(path.read_text())
    return None


def verdict(claim: Claim, record: dict[str, Any] | None) -> dict[str, Any]:
    """One claim's row: what it says, where from, the number and the decision."""
    row = {"claim": claim.name, "text": claim.text, "source": claim.source, "rule": claim.rule}
    if record is None:
        return {**row, "value": None, "status": f"not measured (run gqn experiment {claim.target})"}
    if NOT_APPLICABLE in record:
        return {**row, "value": None, "status": f"not applicable: {record[NOT_APPLICABLE]}"}
    holds = bool(claim.holds(record))
    return {
        **row,
        "value": float(claim.measure(record)),
        "status": "holds" if holds else "does not hold",
    }


def line(row: dict[str, Any]) -> str:
    """``claim [source]: value -> status`` for the terminal."""
    value = "n/a" if row["value"] is None else f"{row['value']:.3f}"
    return (
        f"{row['claim']}: {row['text']} [{row['source']}] = {value} ({row['rule']}) "
        f"-> {row['status']}"
    )


def reproduce(
    names: list[str] | None,
    checkpoint: str | os.PathLike,
    data: str | os.PathLike | None,
    out: str | os.PathLike,
    scenes: int | None = None,
    results: Sequence[str | os.PathLike] = EXPERIMENT_RESULTS,
) -> list[dict[str, Any]]:
    """Decide the claims ``names`` (all when empty) on ``checkpoint``; writes the analyses'
    outputs and ``reproduce.json`` / ``reproduce.md`` into ``out``; returns the rows. An
    experiment's claim reads its JSON from ``out`` or, failing that, from ``results``."""
    claims = select(names)
    out = Path(out)
    overrides = {} if scenes is None else {"scenes": scenes}
    records: dict[str, dict[str, Any] | None] = {}
    rows = []
    for claim in claims:
        if claim.reads not in records:
            folders = [Path(p) for p in results]
            records[claim.reads] = _record(claim, checkpoint, data, out, overrides, folders)
        rows.append(verdict(claim, records[claim.reads]))
    text = "\n".join(
        ["# Seed claims on this checkpoint", "", f"Checkpoint `{checkpoint}`.", "", "```"]
        + [line(r) for r in rows]
        + ["```", ""]
    )
    write_report(out, "reproduce", {"checkpoint": str(checkpoint), "claims": rows}, text)
    return rows

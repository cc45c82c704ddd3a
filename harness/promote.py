"""`sigcache-harness promote`: replay, gate and promote one phase, stopping at the first failure."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import httpx
from rich.console import Console

from harness.cli_commands import rules_table
from harness.gate import gate_exit_code
from harness.pipeline import run_job
from sigcache import signature_cache
from sigcache.errors import PhaseError, SigcacheError
from sigcache.gate_guard import DirectoryGateGuard
from sigcache.phases import MigrationPhase

__all__ = ["EXIT_REFUSED", "promote"]

EXIT_REFUSED = 70
ACTOR = "sigcache-harness promote"


def _promote_remote(url: str, token: str, target: MigrationPhase, reason: str) -> str | None:
    """Ask a running server to promote; None on success, else why it refused."""
    try:
        response = httpx.post(
            f"{url.rstrip('/')}/cache/migration/phase",
            params={"phase": target.name, "reason": reason},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        return f"server unreachable: {exc}"
    if response.status_code == 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    rules = body.get("failed_rules") or []
    detail = f" ({', '.join(rules)})" if rules else ""
    return f"HTTP {response.status_code}: {body.get('error', 'refused')}{detail}"


def _promote_local(reports: str, target: MigrationPhase, reason: str) -> str | None:
    """Promote the process-default facade (phase persisted in its L2 database)."""
    signature_cache.reset_signature_cache(promotion_guard=DirectoryGateGuard(Path(reports)))
    try:
        signature_cache.set_migration_phase(target, actor=ACTOR, reason=reason)
    except (PhaseError, SigcacheError) as exc:
        return str(exc)
    finally:
        signature_cache.reset_signature_cache()
    return None


def promote(args: argparse.Namespace, target: MigrationPhase, console: Console) -> int:
    """Replay the recording under `target`, gate it, and promote only on a pass."""
    job = run_job(
        args.recording,
        phases=(target,),
        reports_root=args.reports,
        thresholds_path=args.thresholds,
        new_cache=args.new_cache,
        l2=args.l2,
    )
    verdict = next(v for v in job.verdicts if v.target == target.name)
    console.print(rules_table(verdict))
    if verdict.outcome != "pass":
        console.print(f"not promoted: the gate says {verdict.outcome}; report in {job.report_dir}")
        return gate_exit_code(verdict)
    reason = f"gate pass: {job.report_dir / f'gate-{target.name}.json'}"
    if args.server:
        token = args.token or os.environ.get("SIGCACHE_API_TOKEN", "")
        refusal = _promote_remote(args.server, token, target, reason)
    else:
        refusal = _promote_local(str(args.reports), target, reason)
    if refusal is not None:
        console.print(f"[red]promotion refused:[/] {refusal}")
        return EXIT_REFUSED
    console.print(f"[green]promoted to {target.name}[/] ({reason})")
    return 0

"""Audit commands: dememo audit mia|recover|certify|all MODEL_ARTIFACT."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from dememo.audit.jobs import (
    OFFICIAL,
    CertifyOptions,
    MIAOptions,
    RecoverOptions,
    audit_identity,
    audit_or_load,
    cached_report,
    produce,
)
from dememo.audit.target import AuditTarget
from dememo.cli.common import Artifacts, DataRoot, DememoTyper, Device, app, console
from dememo.errors import ConfigError
from dememo.paths import artifact_root
from dememo.runtime import resolve_device
from dememo.store import ArtifactStore

audit_app = DememoTyper(help="Audit how deep forgetting goes: membership inference, recovery, "
                             "certified bounds.", no_args_is_help=True)  # fmt: skip
app.add_typer(audit_app, name="audit")

ModelArg = Annotated[Path, typer.Argument(help="A model or unlearned-model artifact directory.")]
TargetClass = Annotated[int | None, typer.Option(help="Audit this class (class-level); default: the "
                                                      "forget set, or the whole model.")]  # fmt: skip
Seed = Annotated[int, typer.Option(help="Seed for set splits, attacks and noise.")]
References = Annotated[list[str] | None, typer.Option("--reference", "-r", help=(
    "Reference model as NAME=ARTIFACT (Before, RT, clean, ...), repeatable."))]  # fmt: skip
Runs = Annotated[list[Path] | None, typer.Option("--run", help=(
    "A run of the reference mechanism (retraining with another seed), for Theorem 2; "
    "repeatable."))]  # fmt: skip

MaxShadow = Annotated[str, typer.Option(help=(
    "Shadow samples per side for the SVC (random), or 'official': the first len(test) retain samples "
    "vs the test set, as Unlearn-Sparse's SVC_MIA."))]  # fmt: skip
ShadowPixels = Annotated[str, typer.Option(help=(
    "Shadow members' pixels: as-trained (protected where the model trained on protected data, as "
    "the official code) or clean."))]  # fmt: skip


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--{what}: expected comma-separated numbers, got {text!r}") from None


def _references(pairs: list[str], data_root: Path | None) -> dict[str, AuditTarget]:
    refs = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--reference {pair!r}: expected NAME=ARTIFACT")
        refs[name] = AuditTarget.from_artifact(path, data_root)
    return refs


def _max_shadow(text: str) -> int | None:
    if text.strip().lower() in (OFFICIAL, "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--max-shadow: expected a sample count or 'official', got {text!r}") from None


def _print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(
            *[f"{v:.4f}" if isinstance(v, float) else str(v) for v in (row.get(c, "") for c in columns)]
        )
    console.print(table)


def _show(path: Path, report: dict[str, Any], reused: bool) -> None:
    if "mia" in report:
        mia = report["mia"]
        shadow = mia.get("shadow", {})
        unseen = mia.get("unseen_rates", {})
        _print_rows(f"SVC member rate on {mia['target']} and on unseen test samples (held out of the fit); "
                    f"shadow: {shadow.get('members')} members ({shadow.get('pixels')}) vs "
                    f"{shadow.get('nonmembers')} non-members, {shadow.get('selection')}",
                    [{"signal": k, "member rate": v, "unseen rate": unseen.get(k, "")}
                     for k, v in mia["svc_rates"].items()])  # fmt: skip
        _print_rows("ROC (members: target set, non-members: unseen test images)", mia["rocs"])
    if "recovery" in report:
        rec = report["recovery"]
        rows = [{"model": c["name"],
                 **{f"eta {e:g}": a for e, a in zip(c["etas"], c["accuracy"], strict=True)}}
                for c in rec["curves"]]  # fmt: skip
        _print_rows(f"recovered accuracy on {rec['eval_set']} (projection {rec['projection']}, "
                    f"BN {rec['batchnorm']})", rows)  # fmt: skip
    if "certify" in report:
        cert = report["certify"]
        rows = [{"eta": b["eta"], "lower": b["lower"] if b["lower"] is not None else
                 f"abstain (N >= {b['needed_n_lower']})", "upper": b["upper"] if b["upper"] is not None
                 else f"abstain (N >= {b['needed_n_upper']})", "q_lower": b["q_lower"],
                 "q_upper": b["q_upper"]}
                for b in cert["bounds"]]  # fmt: skip
        _print_rows(f"Theorem 1 on {cert['metric']} of {cert['target_set']} (at theta_hat: "
                    f"{cert['clean_value']:.4f}); upper holds w.p. >= q, lower w.p. >= 1 - q",
                    rows)  # fmt: skip
        if cert["transfer"]:
            console.print(f"Theorem 2: {cert['transfer']['note']}")
    console.print(f"{'reused' if reused else 'wrote'} report: {path}")


@audit_app.command("mia")
def mia_command(
    model: ModelArg,
    target_class: TargetClass = None,
    max_shadow: MaxShadow = "2000",
    shadow: ShadowPixels = "as-trained",
    lira_ref: Annotated[
        list[Path] | None,
        typer.Option(
            help=(
                "Reference model that trained on neither the target nor its unseen test samples (e.g. RT "
                "for a forgotten class), for offline LiRA; repeatable."
            )
        ),
    ] = None,  # fmt: skip
    seed: Seed = 0,
    data_root: DataRoot = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """Membership inference: the paper's SVC member rates, class-threshold ROC, TPR at low FPR."""
    if shadow not in ("as-trained", "clean"):
        raise ConfigError(f"--shadow: expected as-trained or clean, got {shadow!r}")
    store = ArtifactStore(artifact_root(artifacts))
    target = AuditTarget.from_artifact(model, data_root, store=store)
    refs = [AuditTarget.from_artifact(p, data_root) for p in lira_ref or []]
    options = MIAOptions.model_validate({"target_class": target_class, "max_shadow": _max_shadow(max_shadow),
                                         "shadow": shadow, "seed": seed})  # fmt: skip
    others = {f"lira{i}": r for i, r in enumerate(refs)}
    _show(*audit_or_load(store, "mia", target, options, resolve_device(device), others))


@audit_app.command("recover")
def recover_command(
    model: ModelArg,
    target_class: TargetClass = None,
    etas: Annotated[str, typer.Option(help="Comma-separated l2 radii.")] = "0,0.2,0.4,0.8,1.6",
    projection: Annotated[str, typer.Option(help="ball (default) or sphere (PUE's code).")] = "ball",
    batchnorm: Annotated[str, typer.Option(help="freeze or update BN running statistics.")] = "freeze",
    epochs: Annotated[int | None, typer.Option(help="Override Table 7's epochs.")] = None,
    reference: References = None,
    seed: Seed = 0,
    data_root: DataRoot = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """Recovery attack: projected SGD within an l2 ball of radius eta; a curve over eta."""
    target = AuditTarget.from_artifact(model, data_root)
    refs = _references(reference or [], data_root)
    options = RecoverOptions(target_class=target_class, etas=_floats(etas, "etas"), projection=projection,
                             batchnorm=batchnorm, epochs=epochs, seed=seed)  # fmt: skip
    store = ArtifactStore(artifact_root(artifacts))
    _show(*audit_or_load(store, "recover", target, options, resolve_device(device), refs))


@audit_app.command("certify")
def certify_command(
    model: ModelArg,
    target_class: TargetClass = None,
    sigma: Annotated[float, typer.Option(help="Std of the Gaussian weight noise.")] = 0.01,
    q: Annotated[float, typer.Option(help="Quantile level q of Theorem 1.")] = 0.7,
    alpha: Annotated[float, typer.Option(help="Monte-Carlo error probability (confidence 1-alpha).")] = 0.01,
    samples: Annotated[int, typer.Option(help="Monte-Carlo weight samples N.")] = 256,
    etas: Annotated[str, typer.Option(help="Comma-separated radii eta.")] = "0,0.005,0.01,0.02",
    run: Runs = None,
    epsilon: Annotated[float, typer.Option(help="Theorem 2: epsilon of the indistinguishability.")] = 1.0,
    zeta: Annotated[float, typer.Option(help="Theorem 2: zeta of the indistinguishability.")] = 0.01,
    seed: Seed = 0,
    data_root: DataRoot = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """Certified bounds (Theorem 1) from Monte-Carlo weight noise; Theorem 2 with --run."""
    target = AuditTarget.from_artifact(model, data_root)
    runs = [AuditTarget.from_artifact(p, data_root) for p in run or []]
    options = CertifyOptions(target_class=target_class, sigma=sigma, q=q, alpha=alpha, samples=samples,
                             etas=_floats(etas, "etas"), epsilon=epsilon, zeta=zeta, seed=seed)  # fmt: skip
    others = {f"run{i}": r for i, r in enumerate(runs)}
    store = ArtifactStore(artifact_root(artifacts))
    _show(*audit_or_load(store, "certify", target, options, resolve_device(device), others))


@audit_app.command("all")
def all_command(
    model: ModelArg,
    target_class: TargetClass = None,
    reference: References = None,
    epochs: Annotated[int | None, typer.Option(help="Recovery: override Table 7's epochs.")] = None,
    seed: Seed = 0,
    data_root: DataRoot = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """A report card for one model: MIA table, recovery curve and certified bounds (defaults)."""
    target = AuditTarget.from_artifact(model, data_root, store=ArtifactStore(artifact_root(artifacts)))
    refs = _references(reference or [], data_root)
    jobs = {"mia": MIAOptions(target_class=target_class, seed=seed),
            "recover": RecoverOptions(target_class=target_class, epochs=epochs, seed=seed),
            "certify": CertifyOptions(target_class=target_class, seed=seed)}  # fmt: skip
    identity = {"job": "all", **{job: audit_identity(job, target, options, refs if job == "recover" else {})
                                  for job, options in jobs.items()}}  # fmt: skip
    dev = resolve_device(device)

    def run_all() -> dict[str, Any]:
        parts = [produce(job, target, options, dev, refs if job == "recover" else {})
                 for job, options in jobs.items()]  # fmt: skip
        return {"report": {k: v for p in parts for k, v in p["report"].items()},
                "plots": {k: v for p in parts for k, v in p["plots"].items()}}  # fmt: skip

    _show(*cached_report(ArtifactStore(artifact_root(artifacts)), identity, run_all))

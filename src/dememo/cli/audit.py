"""Audit commands: dememo audit mia|recover|certify|all MODEL_ARTIFACT."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
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
from dememo.audit.recovery import radius_reached
from dememo.audit.target import AuditTarget
from dememo.cli.common import Artifacts, DataRoot, DememoTyper, Device, app, check_writable, console
from dememo.errors import ConfigError
from dememo.options import validate_options
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


CERTIFY = CertifyOptions()  # the certify command's defaults are the job's
AUDIT_NAMES = {MIAOptions: "mia", RecoverOptions: "recover", CertifyOptions: "certify"}


def _max_shadow(text: str) -> int | None:
    if text.strip().lower() in (OFFICIAL, "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--max-shadow: expected a sample count or 'official', got {text!r}") from None


def _print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    """A table whose first column (a name) is never cut; the others are short numbers, so the
    tables fit an 80-column terminal."""
    if not rows:
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, no_wrap=i == 0)
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
        rocs = mia["rocs"]
        sizes = {(r["members"], r["nonmembers"]) for r in rocs}
        counts = f"{rocs[0]['members']} vs {rocs[0]['nonmembers']}" if len(sizes) == 1 else "see report"
        _print_rows(f"ROC (members: target set vs non-members: unseen test images, {counts})",
                    [{"attack": r["attack"], "AUC": r["auc"], "adv.": r["advantage"],
                      **{f"TPR@{100 * float(k[4:-3]):g}%": v for k, v in r.items() if k.startswith("tpr@")}}
                     for r in rocs])  # fmt: skip
    if "recovery" in report:
        rec = report["recovery"]
        rows, missed = [], []
        for c in rec["curves"]:
            etas, distances = c["etas"], c["distance"]
            reached = c.get("reached") or [radius_reached(d, e) for d, e in zip(distances, etas, strict=True)]
            columns = [f"eta {e:g}" for e in etas]
            rows.append({"model": c["name"], **dict(zip(columns, c["accuracy"], strict=True))})
            shown = [f"{d:.3g}{'' if r else ' *'}" for d, r in zip(distances, reached, strict=True)]
            rows.append({"model": "  distance", **dict(zip(columns, shown, strict=True))})
            missed += [f"{c['name']} at eta {e:g}" for e, r in zip(etas, reached, strict=True) if e and not r]
        _print_rows(f"recovered accuracy on {rec['eval_set']} (projection {rec['projection']}, "
                    f"BN {rec['batchnorm']}); distance: ||theta - theta_0|| reached", rows)  # fmt: skip
        if missed:
            console.print(f"* radius not reached (the attack's budget, not eta, bounded it): "
                          f"{'; '.join(missed)}")  # fmt: skip
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


OptionsT = TypeVar("OptionsT", bound=BaseModel)


@dataclass(frozen=True)
class AuditCall:
    """What every audit command takes: the audited model, its class, the seed and where to work."""

    model: Path
    target_class: int | None
    seed: int
    data_root: Path | None
    artifacts: Path | None
    device: str

    def load(self, path: Path | str, as_trained: bool = False) -> AuditTarget:
        """An audit target; ``as_trained`` also loads the training split as the model saw it
        (protected pixels, from the store), which the MIA's shadow members need."""
        return AuditTarget.from_artifact(path, self.data_root, store=self.store if as_trained else None)

    def references(self, pairs: list[str] | None) -> dict[str, AuditTarget]:
        """--reference NAME=ARTIFACT pairs as audit targets by name."""
        refs = {}
        for pair in pairs or []:
            name, sep, path = pair.partition("=")
            if not sep or not name or not path:
                raise ConfigError(f"--reference {pair!r}: expected NAME=ARTIFACT")
            refs[name] = self.load(path)
        return refs

    @property
    def store(self) -> ArtifactStore:
        return ArtifactStore(artifact_root(self.artifacts))

    def options(self, kind: type[OptionsT], **own: Any) -> OptionsT:
        """A job's options: the command's own, and the class and seed every audit takes."""
        return validate_options(kind, f"audit {AUDIT_NAMES.get(kind, kind.__name__)}",
                                target_class=self.target_class, seed=self.seed, **own)  # fmt: skip

    def run(self, job: str, options: BaseModel, others: dict[str, AuditTarget]) -> None:
        """Audit the model (or reuse the stored report) and show the report."""
        device = resolve_device(self.device)
        target = self.load(self.model, as_trained=job == "mia")
        _show(*audit_or_load(self.store, job, target, options, device, others))


def _option(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


# every audit command's options: these first, then the command's own, then the rest
FIRST = [_option("model", ModelArg), _option("target_class", TargetClass, None)]
LAST = [_option("seed", Seed, 0), _option("data_root", DataRoot, None), _option("artifacts", Artifacts, None),
        _option("device", Device, "auto")]  # fmt: skip


def audit_command(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``body(call: AuditCall, **own_options)`` as ``dememo audit NAME``: typer sees the
    options every audit takes (FIRST, LAST) around the body's own, and the body gets them as one
    ``AuditCall``."""

    def register(body: Callable[..., None]) -> Callable[..., None]:
        own = [_option(p.name, p.annotation, p.default)
               for p in list(inspect.signature(body, eval_str=True).parameters.values())[1:]]  # fmt: skip
        common = [p.name for p in FIRST + LAST]

        def command(**values: Any) -> None:
            check_writable(artifact_root(values["artifacts"]))  # reports are written there
            body(AuditCall(**{key: values.pop(key) for key in common}), **values)

        command.__signature__ = inspect.Signature(FIRST + own + LAST)  # type: ignore[attr-defined]
        command.__doc__ = body.__doc__
        audit_app.command(name)(command)
        return body

    return register


@audit_command("mia")
def mia_command(
    call: AuditCall,
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
) -> None:
    """Membership inference: the paper's SVC member rates, class-threshold ROC, TPR at low FPR."""
    if shadow not in ("as-trained", "clean"):
        raise ConfigError(f"--shadow: expected as-trained or clean, got {shadow!r}")
    refs = {f"lira{i}": call.load(p) for i, p in enumerate(lira_ref or [])}
    call.run("mia", call.options(MIAOptions, max_shadow=_max_shadow(max_shadow), shadow=shadow), refs)


@audit_command("recover")
def recover_command(
    call: AuditCall,
    etas: Annotated[str, typer.Option(help="Comma-separated l2 radii.")] = "0,0.2,0.4,0.8,1.6",
    projection: Annotated[str, typer.Option(help="ball (default) or sphere (PUE's code).")] = "ball",
    batchnorm: Annotated[str, typer.Option(help="freeze or update BN running statistics.")] = "freeze",
    epochs: Annotated[int | None, typer.Option(help="Override Table 7's epochs.")] = None,
    reference: References = None,
) -> None:
    """Recovery attack: projected SGD within an l2 ball of radius eta; a curve over eta."""
    options = call.options(RecoverOptions, etas=_floats(etas, "etas"), projection=projection,
                           batchnorm=batchnorm, epochs=epochs)  # fmt: skip
    call.run("recover", options, call.references(reference))


@audit_command("certify")
def certify_command(
    call: AuditCall,
    sigma: Annotated[float, typer.Option(help="Std of the Gaussian weight noise.")] = CERTIFY.sigma,
    q: Annotated[float, typer.Option(help="Quantile level q of Theorem 1.")] = CERTIFY.q,
    alpha: Annotated[
        float, typer.Option(help="Monte-Carlo error probability (confidence 1-alpha).")
    ] = CERTIFY.alpha,
    samples: Annotated[int, typer.Option(help="Monte-Carlo weight samples N.")] = CERTIFY.samples,
    etas: Annotated[str, typer.Option(help="Comma-separated radii eta.")] = ",".join(
        f"{e:g}" for e in CERTIFY.etas
    ),
    run: Runs = None,
    epsilon: Annotated[
        float, typer.Option(help="Theorem 2: epsilon of the indistinguishability.")
    ] = CERTIFY.epsilon,
    zeta: Annotated[float, typer.Option(help="Theorem 2: zeta of the indistinguishability.")] = CERTIFY.zeta,
) -> None:
    """Certified bounds (Theorem 1) from Monte-Carlo weight noise; Theorem 2 with --run."""
    runs = {f"run{i}": call.load(p) for i, p in enumerate(run or [])}
    options = call.options(CertifyOptions, sigma=sigma, q=q, alpha=alpha, samples=samples,
                           etas=_floats(etas, "etas"), epsilon=epsilon, zeta=zeta)  # fmt: skip
    call.run("certify", options, runs)


@audit_command("all")
def all_command(
    call: AuditCall,
    reference: References = None,
    epochs: Annotated[int | None, typer.Option(help="Recovery: override Table 7's epochs.")] = None,
) -> None:
    """A report card for one model: MIA table, recovery curve and certified bounds (defaults)."""
    target = call.load(call.model, as_trained=True)
    refs = call.references(reference)
    jobs = {"mia": call.options(MIAOptions), "recover": call.options(RecoverOptions, epochs=epochs),
            "certify": call.options(CertifyOptions)}  # fmt: skip
    identity = {"job": "all", **{job: audit_identity(job, target, options, refs if job == "recover" else {})
                                  for job, options in jobs.items()}}  # fmt: skip
    dev = resolve_device(call.device)

    def run_all() -> dict[str, Any]:
        parts = [produce(job, target, options, dev, refs if job == "recover" else {})
                 for job, options in jobs.items()]  # fmt: skip
        return {"report": {k: v for p in parts for k, v in p["report"].items()},
                "plots": {k: v for p in parts for k, v in p["plots"].items()}}  # fmt: skip

    _show(*cached_report(call.store, identity, run_all))

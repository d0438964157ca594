"""Experiment commands: reproduce, results and report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from dememo.cli.common import Artifacts, DataRoot, Device, app, check_choice, check_writable, console
from dememo.experiments import SCALES, Spec, load_spec, plan_spec, reproduce, spec_names
from dememo.experiments.cost import estimated_gpu_minutes
from dememo.experiments.report import write_markdown, write_report
from dememo.experiments.reproduce import stored_entries, unreached_radii
from dememo.experiments.results import STATUSES, ResultsDB, export_rows, write_csv
from dememo.experiments.stages import StageContext
from dememo.experiments.views import VIEWS, ViewInput, table_markdown
from dememo.experiments.views.lifecycle import lifecycle_recovery_table, lifecycle_summary
from dememo.paths import artifact_root
from dememo.progress import make_progress

Results = Annotated[Path, typer.Option("--results", help="Results directory (holds results.sqlite).")]


@app.command("reproduce")
def reproduce_command(
    spec: Annotated[str | None, typer.Argument(help="Spec name (see --list) or a YAML file.")] = None,
    scale: Annotated[
        str, typer.Option(help=f"One of {', '.join(SCALES)} (--list: the scales each spec has).")
    ] = "smoke",
    backend: Annotated[str, typer.Option(help="local (this process) or ray.")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address [start a local one].")] = None,
    num_cpus: Annotated[int | None, typer.Option(help="CPUs of the local Ray instance.")] = None,
    gpus_per_stage: Annotated[float, typer.Option(help="GPUs each Ray stage reserves.")] = 0.0,
    list_specs: Annotated[
        bool, typer.Option("--list", help="List the shipped specs, their scales and notes.")
    ] = False,
    results: Results = Path("results"),
    report: Annotated[bool, typer.Option(help="Write <results>/report.html at the end.")] = True,
    data_root: DataRoot = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """Run a paper experiment's stage graph; finished stages are reused, failures exit non-zero."""
    if list_specs or spec is None:
        console.print(spec_table())
        return
    loaded = load_spec(spec)
    loaded.settings(scale)
    check_writable(results, what="--results")
    check_writable(artifact_root(artifacts), what="--artifacts")
    context = StageContext(artifact_root(artifacts).resolve(), data_root.resolve() if data_root else None,
                           device, gpus_per_stage)  # fmt: skip
    run_spec(loaded, scale, results, context, backend, {"address": address, "num_cpus": num_cpus}, report)


def scale_notes(spec: Spec, scale: str) -> str:
    """A scale's notes; the gpu scale's begin with its estimated GPU time (experiments/cost.py)."""
    notes = getattr(spec.settings(scale), "notes", "")
    if scale != "gpu":
        return notes
    minutes = estimated_gpu_minutes([p.stage for p in plan_spec(spec, scale)])
    return f"about {minutes:.0f} min on one H100 (estimated from counted work, docs/benchmarks.md). {notes}"


def spec_table() -> Table:
    """Every shipped spec (what it reproduces), then one row per scale with its notes."""
    table = Table("spec", "scale", "notes", show_lines=True)
    for name in spec_names():
        loaded = load_spec(name)
        table.add_row(f"[bold]{name}[/bold]", "", f"{loaded.paper.artefact}: {loaded.title}")
        for scale in loaded.scales:
            table.add_row("", scale, scale_notes(loaded, scale))
    return table


def run_spec(
    spec: Spec,
    scale: str,
    results: Path,
    context: StageContext,
    backend: str = "local",
    backend_options: dict[str, Any] | None = None,
    report: bool = True,
) -> Path | None:
    """Reproduce with a progress bar over the graph's stages; the report's path when written."""
    console.print(f"reproduce {spec.name} ({spec.paper.artefact}) at {scale} scale on {backend}")
    with make_progress() as bar:
        task = bar.add_task("stages", total=None, status="")

        def progress(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, status=label)

        outcome = reproduce(spec, scale, results, context, backend, backend_options,
                            log=lambda line: bar.console.print(f"  {line}"), progress=progress)  # fmt: skip
    ran, reused, failed = len(outcome.ran), len(outcome.reused), len(outcome.failed)
    console.print(f"{ran} stages run, {reused} reused, {failed} failed; results in {results}", soft_wrap=True)
    unreached = unreached_radii(outcome)
    if unreached:
        console.print(f"warning: the recovery attack did not reach its radius (its epochs/lr, not eta, "
                      f"bounded it) in {len(unreached)} stage(s): {', '.join(unreached)}", soft_wrap=True,
                      markup=False, highlight=False)  # fmt: skip
    path = write_report(results) if report else None
    if path is not None:
        console.print(f"report: {path}", soft_wrap=True)
    outcome.raise_for_failures()
    return path


def _print_findings(results: Path) -> None:
    """``dememo results DIR --findings``: the findings view's verdicts per scale, as rich tables."""
    from dememo.experiments.views.findings import recorded_verdicts

    for scale, verdicts in recorded_verdicts(results).items():
        table = Table("finding", "claim", "quantity", "value [95% interval]", "verdict", "reason",
                      title=f"Findings ({scale} scale)")  # fmt: skip
        for v in verdicts:
            table.add_row(v.finding, v.claim, v.quantity, v.value(), v.verdict, v.reason)
        console.print(table if verdicts else f"{scale}: no finding can be tested with these results")


@app.command("results")
def results_command(
    results: Annotated[Path, typer.Argument(help="Results directory.")] = Path("results"),
    spec: Annotated[str | None, typer.Option(help="Only this spec.")] = None,
    scale: Annotated[str | None, typer.Option(help="Only this scale.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this stage kind (protect, train, ...).")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status: done, failed, running.")] = None,
    metric: Annotated[str | None, typer.Option(help="Only this metric.")] = None,
    csv: Annotated[
        Path | None,
        typer.Option(
            help="Write the rows as CSV here ('-': standard output): one "
            "unit per metric, label columns, abstentions as rows."
        ),
    ] = None,
    findings: Annotated[
        bool, typer.Option(help="Print a verdict for every paper finding the data tests.")
    ] = False,
) -> None:
    """List recorded results (one row per stage and metric), filtered; optionally as CSV (also
    when standard output is not a terminal, so a pipe gets every column)."""
    check_choice(status, STATUSES, "--status")
    if csv is not None and str(csv) != "-":
        check_writable(csv, is_file=True, what="--csv")
    if findings:
        _print_findings(results)
        return
    db = ResultsDB.in_directory(results, create=False)
    try:
        filters = {"spec": spec, "scale": scale, "kind": kind, "status": status, "metric": metric}
        rows = (
            export_rows(db, **filters) if csv is not None or not sys.stdout.isatty() else db.rows(**filters)
        )
    finally:
        db.close()
    if csv is not None:
        if str(csv) == "-":
            sys.stdout.write(write_csv(rows))
            return
        write_csv(rows, csv)
        console.print(f"wrote {len(rows)} rows to {csv}")
        return
    if not sys.stdout.isatty():  # piped: the full width as CSV, not a table cut to 80 columns
        sys.stdout.write(write_csv(rows))
        return
    table = Table("spec", "scale", "stage", "key", "status", "metric", "split", "value")
    for row in rows:
        value = "" if row["value"] is None else f"{row['value']:.4g}"
        table.add_row(row["spec"], row["scale"], row["stage"], row["key"], row["status"],
                      row["metric"] or (row["error"] or ""), row["split"] or "", value)  # fmt: skip
    console.print(table)


@app.command("report")
def report_command(
    results: Annotated[Path, typer.Argument(help="Results directory.")] = Path("results"),
    out: Annotated[Path | None, typer.Option(help="HTML file [<results>/report.html].")] = None,
    markdown: Annotated[
        Path | None, typer.Option(help="Also write the report as Markdown here (figures as PNG beside it).")
    ] = None,
) -> None:
    """Write one self-contained HTML report: the paper's tables with this run's values beside them."""
    for option, path in (
        ("--out", out if out is not None else results / "report.html"),
        ("--markdown", markdown),
    ):
        if path is not None:
            check_writable(path, is_file=True, what=option)
    console.print(f"wrote {write_report(results, out)}")
    if markdown is not None:
        console.print(f"wrote {write_markdown(results, markdown)}")


@app.command("demo")
def demo_command(
    scale: Annotated[str, typer.Option(help="The lifecycle spec's scale: smoke, cpu, gpu or large.")] = "cpu",
    results: Results = Path("dememo-demo"),
    data_root: DataRoot = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """The main job: the lifecycle on the embedded default dataset (Fashion-MNIST) -- protect
    (OPS), train, unlearn class 0 (RT, IF, FT, GA), audit (MIA, recovery, certified bounds),
    three seeds -- ending with the findings verdicts and the HTML report."""
    spec = load_spec("lifecycle")
    spec.settings(scale)
    check_writable(results, what="--results")
    check_writable(artifact_root(artifacts), what="--artifacts")
    context = StageContext(
        artifact_root(artifacts).resolve(), data_root.resolve() if data_root else None, device
    )
    path = run_spec(spec, scale, results, context)
    db = ResultsDB.in_directory(results, create=False)
    try:
        entries = stored_entries(db, spec.name, scale)
    finally:
        db.close()
    view = ViewInput(spec, scale, spec.settings(scale), entries)
    tables = (lifecycle_summary(view), lifecycle_recovery_table(view), VIEWS.get("findings")(view))
    for table in tables:  # the distance beside every eta; the verdicts this scale can give
        console.print(table_markdown(table), markup=False, highlight=False, soft_wrap=True)
    console.print(f"HTML report: {path}", soft_wrap=True)

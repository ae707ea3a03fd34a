"""Preset loading and validation errors that name key, value and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from training import PresetError, list_presets, load_config
from training.config import config_from_dict


def test_seed_preset_is_the_tutorial() -> None:
    cfg = load_config("seed")
    assert "seed" in list_presets()
    assert (cfg.split.test_size, cfg.split.random_state) == (0.2, 21)
    assert cfg.model.kind == "dense" and cfg.model.params["encoder_widths"] == [32, 16, 8]
    assert (cfg.training.epochs, cfg.training.batch_size) == (20, 512)
    assert (cfg.threshold.policy, cfg.threshold.k) == ("mean_std", 1.0)


@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("training: {epochs: 0}", "training.epochs: 0 is not allowed; must be >= 1"),
        ("training: {epochs: ten}", "training.epochs: 'ten' is a str, expected int"),
        ("trainin: {}", "trainin: unknown key"),
        ("threshold: {policy: best}", "threshold.policy: 'best' is not allowed"),
        ("threshold: {fit_on: holdout}", "training.holdout_fraction"),
        ("training: {early_stopping_patience: 5}", "training.holdout_fraction"),
        ("split: {test_size: 1.5}", "split.test_size"),
        ("model: {score_smoothing: -1}", "model.score_smoothing: -1.0 must be a number from 0"),
        ("model: {score_smoothing: 40}", "from 0 (plain MAE) to 17.5 samples"),
        ("model: {noise_discount: -1}", "model.noise_discount: -1.0 must be a number from 0"),
        ("model: {noise_discount: 11}", "from 0 (off) to 10"),
        ("model: {noise_discount: 1}", "model.noise_discount: 1.0 needs score_smoothing > 0"),
        ("[1, 2]", "config: expected a mapping"),
        ("model: {normalisation: robust}", "model.normalisation: 'robust' is not allowed"),
        ("model: {align: {max_shift: 3}}", "off unless model.normalisation is 'zscore_window'"),
        (
            "model: {normalisation: zscore_window, align: {max_shift: 40}}",
            "model.align.max_shift: 40 must be an integer from 0 to 20",
        ),
        ("model: {align: {shift: 3}}", "model.align.shift: unknown key"),
        (
            "model: {normalisation: zscore_window, length_search: {max_error: 0.1}}",
            "model.length_search: max_error 0.1 needs model.normalisation 'zscore_window' and "
            "model.align",
        ),
        (
            "model: {normalisation: zscore_window, align: {max_shift: 6}, "
            "length_search: {max_error: 0.1, steps: 4}}",
            "model.length_search.steps: 4 must be odd",
        ),
        (
            "model: {normalisation: zscore_window, align: {gate: {gain: 1.5}}}",
            "model.align.gate: gain 1.5 needs model.align",
        ),
        (
            "model: {normalisation: zscore_window, align: {max_shift: 6, gate: {gain: 0.5}}}",
            "model.align.gate.gain: 0.5 must be a number from 1 to 10",
        ),
        ("training: {augment: {copies: -1}}", "training.augment.copies: -1 is not allowed"),
        ("training: {augment: {max_stretch: 0.5}}", "training.augment.max_stretch: 0.5"),
    ],
)
def test_bad_config(tmp_path: Path, yaml_text: str, fragment: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(yaml_text)
    with pytest.raises(PresetError) as info:
        load_config(str(f))
    assert fragment in str(info.value)


def test_recommended_preset_smooths_the_residual_and_seed_does_not() -> None:
    rec, seed = load_config("recommended"), load_config("seed")
    assert (rec.model.score_smoothing, rec.model.noise_discount) == (2.0, 1.5)
    assert (rec.threshold.policy, rec.threshold.q) == ("quantile", 0.98)
    assert (seed.model.score_smoothing, seed.model.noise_discount) == (0.0, 0.0)


def test_records_preset_is_recommended_with_a_lower_threshold_quantile() -> None:
    rec, records = load_config("recommended"), load_config("records")
    assert records.threshold.q == 0.95 and rec.threshold.q == 0.98
    # Everything else follows recommended: a change there must be made here too.
    same = records.replace(name=rec.name, description=rec.description, threshold=rec.threshold)
    assert same == rec


def test_unknown_preset() -> None:
    with pytest.raises(PresetError, match="neither a preset"):
        load_config("does-not-exist")


def test_recommended_normalises_each_window_and_aligns_and_seed_does_not() -> None:
    rec, seed = load_config("recommended"), load_config("seed")
    assert rec.model.normalisation == "zscore_window" and rec.model.align.max_shift == 6
    assert seed.model.normalisation == "minmax_global" and not seed.model.align.enabled


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        # a wrong type in a nested section: the full dotted path
        ({"model": {"align": {"margin": "wide"}}}, "model.align.margin: 'wide' is a str"),
        ({"training": {"augment": {"copies": True}}}, "training.augment.copies: True is a bool"),
        ({"training": {"augment": 3}}, "training.augment: expected a mapping, got int"),
        ({"model": {"align": {"shift": 3}}}, "allowed here: ['max_shift'"),
        ({"seed": 4.0}, "seed: 4.0 is a float, expected int"),
        ({"threshold": {"k": False}}, "threshold.k: False is a bool, expected float"),
        # the optional field's message names both what it takes
        ({"training": {"early_stopping_patience": "ten"}}, "expected int | None"),
        # a generic field's message names its parameters (not just ``dict``), and they count
        ({"model": {"params": {1: 2}}}, "model.params: {1: 2} is a dict, expected dict[str,"),
        ({"name": None}, "name: None is a NoneType, expected str"),
        ({"beat_recipe": [50]}, "beat_recipe: expected a mapping of names to values, got list"),
        ({"model": {"params": "wide"}}, "model.params: expected a mapping of names to values"),
    ],
)
def test_type_errors_name_the_full_key(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PresetError) as info:
        config_from_dict(data)
    assert fragment in str(info.value)


def test_a_float_field_takes_an_int_anywhere_in_the_tree() -> None:
    cfg = config_from_dict(
        {"training": {"learning_rate": 1, "augment": {"max_shift": 2}}, "threshold": {"k": 3}}
    )
    values = (cfg.training.learning_rate, cfg.training.augment.max_shift, cfg.threshold.k)
    assert values == (1.0, 2.0, 3.0) and all(type(v) is float for v in values)


def test_a_stored_config_round_trips() -> None:
    for name in list_presets():
        cfg = load_config(name)
        assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (
            {"training": {"learning_rate": 0}},
            "training.learning_rate: 0.0 is not allowed; must be > 0",
        ),
        ({"threshold": {"q": 1}}, "threshold.q: 1.0 is not allowed; must be in (0, 1)"),
        ({"training": {"augment": {"max_shift": 21}}}, "from 0 to 20 samples"),
        ({"training": {"validation": "all"}}, "training.validation: 'all' is not allowed; choose"),
    ],
)
def test_range_and_choice_errors(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PresetError) as info:
        config_from_dict(data)
    assert fragment in str(info.value)


def test_the_beat_recipe_section_overrides_the_default_recipe() -> None:
    cfg = config_from_dict({"beat_recipe": {"powerline_hz": [50], "match_polarity": False}})
    recipe = cfg.recipe()
    assert recipe.powerline_hz == (50,) and not recipe.match_polarity
    assert recipe.detector == "neurokit" and recipe.pre_fraction == 0.021  # the rest: defaults
    assert config_from_dict(cfg.to_dict()) == cfg
    assert load_config("recommended").recipe() == config_from_dict({}).recipe()


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"powerline_hz": 50}, "beat_recipe.powerline_hz: got 50; use a list"),
        ({"powerline_hz": [5]}, "beat_recipe.powerline_hz"),
        ({"detectr": "xqrs"}, "beat_recipe: unknown key(s) ['detectr']"),
        ({"window": 100}, "beat_recipe.window: 100 is not allowed; the models take 140"),
        ({"invert": "no"}, "beat_recipe.invert: got 'no'; use true or false"),
        ({"hop_s": 9}, "beat_recipe.hop_s"),
        ({"guard_s": "0.3"}, "beat_recipe.guard_s: got '0.3' (str); use a number"),
        ({"min_rr_s": None}, "beat_recipe.min_rr_s: got None (NoneType); use a number"),
        ({"pre_fraction": True}, "beat_recipe.pre_fraction: got True (bool); use a number"),
    ],
)
def test_beat_recipe_errors_name_the_key(section: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PresetError) as info:
        config_from_dict({"beat_recipe": section})
    assert fragment in str(info.value)

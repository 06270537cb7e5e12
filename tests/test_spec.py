import dataclasses

import pytest

from badminima.errors import BadInput
from badminima.spec import (InitSpec, PhaseSpec, RunSpec, apply_recipe, load_toml, merge, non_default,
                            recipe_name, run_id, validate)


def test_id_depends_only_on_non_default_fields():
    spec = merge(RunSpec(), {"recipe": {"epochs": 7}})
    assert non_default(spec) == {"recipe": {"epochs": 7}}
    assert run_id(spec) == run_id(merge(RunSpec(), {"recipe": {"epochs": 7}}))
    assert run_id(spec) != run_id(RunSpec())


def test_adding_a_field_with_a_default_keeps_old_ids():
    @dataclasses.dataclass(frozen=True)
    class PhaseSpecV2(PhaseSpec):
        label_smoothing: float = 0.0  # a field added later, with a default

    old = non_default(PhaseSpec(epochs=3))
    new = non_default(PhaseSpecV2(epochs=3))
    assert old == new == {"epochs": 3}


def test_default_init_ignores_pretraining_settings():
    a = RunSpec(init=InitSpec(name="default", replication_factor=5))
    assert run_id(a) == run_id(RunSpec())


def test_toml_and_overrides(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text('seed = 3\n[model]\nname = "cnn1d"\n[init]\nname = "adversarial"\n'
                    'replication_factor = 4\n[init.pretrain]\nepochs = 9\n[recipe]\nlr_milestones = [5, 8]\n')
    spec = merge(RunSpec(), load_toml(path))
    assert spec.seed == 3 and spec.model.name == "cnn1d"
    assert spec.init.replication_factor == 4 and spec.init.pretrain.epochs == 9
    assert spec.init.pretrain.patience == InitSpec().pretrain.patience  # untouched nested default kept
    assert spec.recipe.lr_milestones == (5, 8)
    assert merge(spec, {"seed": 4}).seed == 4


@pytest.mark.parametrize("text", ['[model]\nwidht = 3\n', '[recipe]\nepochs = "ten"\n', 'seed = 1.5\n',
                                  '[recipe]\nlr_milestones = [1.5]\n', 'model = 3\n', '[recipe\n'])
def test_bad_spec_files(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(BadInput):
        merge(RunSpec(), load_toml(path))


def test_missing_spec_file(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        load_toml(tmp_path / "nope.toml")


@pytest.mark.parametrize("change", [{"init": {"replication_factor": 0}}, {"init": {"zeroed_percent": 100.5}},
                                    {"init": {"zeroed_percent": -1.0}}, {"recipe": {"batch_size": 0}},
                                    {"init": {"zero_mode": "rows"}}])
def test_range_checks(change):
    with pytest.raises(BadInput):
        validate(merge(RunSpec(), change))


def test_recipes_switch_heuristics_off():
    sota = PhaseSpec(momentum=0.9, weight_decay=5e-4, augment=True)
    assert recipe_name(apply_recipe(sota, "sota")) == "sota"
    vanilla = apply_recipe(sota, "vanilla")
    assert (vanilla.momentum, vanilla.weight_decay, vanilla.augment) == (0.0, 0.0, False)
    assert recipe_name(vanilla) == "vanilla"
    assert recipe_name(apply_recipe(sota, "DA+momentum")) == "DA+momentum"

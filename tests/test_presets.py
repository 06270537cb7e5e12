from dataclasses import replace

from badminima.experiments.paper004 import local_minima, norm_bias
from badminima.presets import base_spec, user_model


def test_experiments_with_their_own_cpu_model_ignore_the_presets_width_but_keep_the_users():
    base = base_spec("cpu", "mnist1d")
    assert base.model.width == 384  # the main job's MLP
    assert user_model(base, "cpu").width is None
    assert local_minima.base_spec(base, "cpu").model.width == local_minima.CPU["width"]
    assert norm_bias.base_spec(base, "cpu").model.width == norm_bias.CPU_MODEL["width"]
    chosen = replace(base, model=replace(base.model, width=64))
    assert user_model(chosen, "cpu").width == 64
    assert local_minima.base_spec(chosen, "cpu").model.width == 64
    assert norm_bias.base_spec(chosen, "cpu").model.width == 64

# %% [markdown]
# # badminima from Python
#
# Run paper 000's core experiment at toy scale, read the results as pandas DataFrames, reload a trained
# network, then do the same with a model and a dataset of your own (examples/my_plugin.py).
# Runs as a script (`python examples/quickstart.py`, about a minute on a CPU) or cell by cell in an
# editor that reads `# %%` cells. The output folder is $BADMINIMA_EXAMPLE_OUT (default: quickstart-out).

# %%
import os
import sys
from pathlib import Path

import torch

import badminima
from badminima.data import load_dataset

out = Path(os.environ.get("BADMINIMA_EXAMPLE_OUT", "quickstart-out"))
tiny = {"recipe": {"epochs": 5, "batch_size": 32}, "init": {"pretrain": {"epochs": 3, "batch_size": 32}}}

# %% [markdown]
# `badminima.run` is `badminima run`: random vs adversarial init x vanilla vs SOTA SGD, here on the
# 2-D Gaussians. It returns the experiment's summary records (accuracies in percent).

# %%
records = badminima.run("bad-minima", out=out, seeds=[0], data={"name": "gaussians2d"}, quiet=True, **tiny)
for r in records:
    print(f"{r['init']:>11} init, {r['recipe']:>7}: test {r['test_acc']:.1f}%  ({r['run_id']})")

# %% [markdown]
# `badminima.load` returns DataFrames: runs (spec fields as columns), phases, per-epoch metrics,
# measures and experiment records.

# %%
results = badminima.load(out)
print(results.runs[["run_id", "init.name", "recipe_name", "recipe.momentum", "test_acc"]])
print(results.epochs.groupby("kind").size())

# %% [markdown]
# `badminima.load_model` rebuilds a run's trained network; evaluating it again gives the stored accuracy.

# %%
run = results.runs.iloc[0]
model = badminima.load_model(out, run.run_id)
data = load_dataset("gaussians2d")
with torch.no_grad():
    accuracy = 100 * (model(data.x_test).argmax(1) == data.y_test).sum().item() / len(data.y_test)
print(f"run {run.run_id}: stored {run.test_acc:.2f}%, evaluated again {accuracy:.2f}%")
assert abs(accuracy - run.test_acc) < 1e-9

# %% [markdown]
# Your own model and data: name them as `module:function` (this folder must be on the Python path;
# pool and Ray workers import them too). Keyword arguments go in `options`.

# %%
sys.path.insert(0, str(Path(__file__).resolve().parent))
records = badminima.run("bad-minima", out=out, seeds=[0], quiet=True,
                        data={"name": "my_plugin:two_moons", "options": {"n_train": 100, "noise": 0.2}},
                        model={"name": "my_plugin:wide_relu", "width": 32}, **tiny)
moons = badminima.load(out).runs.query("`data.name` == 'my_plugin:two_moons'")
print(moons[["run_id", "init.name", "recipe_name", "data.options.n_train", "train_acc", "test_acc"]])

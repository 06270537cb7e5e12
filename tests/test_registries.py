"""The light registries of experiments and inits: `badminima list` and `import badminima` import no torch, and
every name the light tables list is registered, with the same description, by the module they name (and every
module of the package that registers one is in the table)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import badminima.experiments as experiments
import badminima.inits as inits

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "matplotlib", "pandas", "numpy")


def _heavy_modules(code: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running `code` (independent of our import machinery)."""
    probe = f"import sys\n{code}\nprint([m for m in {HEAVY!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import badminima",
    "from badminima.cli import main; main(['list'])",  # every section, experiments and inits included
    "from badminima.cli import main, build_parser\ntry:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass",
])
def test_import_and_listing_import_nothing_heavy(code):
    assert _heavy_modules(code) == []


# In a fresh interpreter: wrap the register function so that it notes the module calling it, then import every
# module of the package and of its subpackages; prints {name: module} of every registration.
WHO_REGISTERS = """
import importlib, json, pkgutil, sys
package = importlib.import_module({package!r})
real = getattr(package, {register!r})
found = {{}}
def noting(*args, **kwargs):
    name = args[0] if isinstance(args[0], str) else args[0].name  # an init's name, or an Experiment
    found[name] = sys._getframe(1).f_globals["__name__"][len(package.__name__) + 1:]  # e.g. paper000.toy
    return real(*args, **kwargs)
setattr(package, {register!r}, noting)
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(info.name)
print(json.dumps(found))
"""


@pytest.mark.parametrize("package, register", [(experiments, "register_experiment"), (inits, "register_init")])
def test_the_light_table_is_what_the_modules_register(package, register):
    code = WHO_REGISTERS.format(package=package.__name__, register=register)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    registered = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(registered) - set(package.BUILTIN) == set(), f"registered but missing from {package.__name__}.BUILTIN"
    assert set(package.BUILTIN) - set(registered) == set(), f"in {package.__name__}.BUILTIN but registered by no module"
    assert registered == {name: module for name, (module, _) in package.BUILTIN.items()}


def test_every_listed_name_resolves_on_first_use():
    for name in experiments.list_experiments():
        exp = experiments.get_experiment(name)
        assert exp.name == name and exp.description == experiments.experiment_descriptions()[name]
    for name in inits.list_inits():
        entry = inits.get_init(name)
        assert entry.name == name and entry.description == inits.init_descriptions()[name]

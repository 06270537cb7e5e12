"""badminima: experiments on what deep-learning theory claims about optimization and generalization.

The public API (badminima/api.py): `run` an experiment, `load` an output directory as pandas
DataFrames, `load_model` a run's trained network. Importing badminima imports neither torch nor pandas;
each is imported where it is first needed.
"""
__version__ = "0.1.0"

from .api import Results, load, load_model, run  # noqa: E402

__all__ = ["Results", "__version__", "load", "load_model", "run"]

"""badminima: experiments on what deep-learning theory claims about optimization and generalization."""
__version__ = "0.1.0"

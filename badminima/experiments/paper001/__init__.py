"""Paper 001: Liao, Banburski, Poggio et al., "Generalization Puzzles in Deep Networks": its experiments and published numbers."""

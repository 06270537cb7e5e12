"""Paper 000 (and its earlier version 003): Liu, Papailiopoulos & Achlioptas, "Bad Global Minima Exist and SGD Can Reach Them": its experiments and published numbers."""

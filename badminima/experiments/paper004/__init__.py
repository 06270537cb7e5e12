"""Paper 004: Goldblum, Geiping, Schwarzschild, Moeller & Goldstein, "Truth or Backpropaganda?": its experiments and published numbers."""

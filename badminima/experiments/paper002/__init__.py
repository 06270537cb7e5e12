"""Lecture 002: Papailiopoulos, "Is it all about SGD?" (implicit bias of gradient descent): its experiments."""

"""The code interpreter: one Jupyter kernel per thread, its process, limits and outputs."""

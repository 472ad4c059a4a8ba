"""Variables moved between a notebook and a thread's code-interpreter kernel (never pickled)."""

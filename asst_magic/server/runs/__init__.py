"""Running a run: the engine, the per-run driver, its steps, tool plumbing and event streams."""

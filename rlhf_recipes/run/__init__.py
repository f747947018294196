"""Running a recipe: the pipeline, the run directory, processes, progress and sweeps."""

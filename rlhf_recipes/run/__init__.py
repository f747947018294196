"""Running a recipe: the pipeline that plans and runs its stages, a study of many runs, and the accelerate
launcher."""

"""One module per stage, each holding one function of the stage's name, declared with `@stage`.

A stage's name is the same everywhere: recipe section, module, function, run-directory folder and
`--force` argument. The training stages each build exactly one TRL trainer; what they share lives
in rlhf_recipes/training.
"""

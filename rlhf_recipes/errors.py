"""The one error type the command line turns into a clean message and exit code 2."""


class RecipeError(Exception):
    """Bad input from the user: a recipe, an override, a file, a directory.

    ``problems`` holds one line per problem, each naming the thing, what was wrong and
    the fix, so that a recipe with several mistakes is reported all at once.
    """

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

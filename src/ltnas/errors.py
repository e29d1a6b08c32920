"""The one exception type users see.

Anything a user can fix (a missing file, a misspelt name, an impossible setting) is raised as
`LtnasError` with a message that names the problem *and* the fix. The CLI prints that one line
and exits with code 2; everything else is a bug and keeps its traceback.
"""


class LtnasError(Exception):
    """A problem with the user's input, stated as 'what is wrong; how to fix it'."""

    exit_code = 2

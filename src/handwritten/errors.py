"""The one error type that reaches users.

Every failure caused by a user's input (a file, a flag, a download) is raised as a
HandwrittenError whose message names the culprit and the fix; the CLI prints the message
and exits non-zero, so no traceback reaches a user for their own mistake.
"""


class HandwrittenError(Exception):
    """A failure the user can act on; the message says what to do."""


class DataError(HandwrittenError):
    """MNIST files missing, corrupt or unreachable."""


class ImageError(HandwrittenError):
    """An input image that cannot be read."""


class ModelError(HandwrittenError):
    """A model file that cannot be loaded safely or does not fit the task."""

"""The data layer's one error: a dataset, image or archive that is missing, malformed or unsafe."""


class DataError(ValueError):
    """A dataset that is missing or malformed. The message says how to fix it."""

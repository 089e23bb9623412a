"""The one exception type for errors a user can cause."""


class DmpoError(ValueError):
    """A bad config, malformed data, or an unknown name; the message says what to change."""

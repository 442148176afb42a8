"""From an image and the user's options to what pyc_core.run needs."""

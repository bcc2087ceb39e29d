"""Kept so that ``pytest_plugins = ["app.testing.fixtures"]`` (the line the README used to
ask for) keeps working: it loads the kit's plugin, :mod:`app.testing.plugin`."""

pytest_plugins = ["app.testing.plugin"]

pytest_plugins = ["app.testing.fixtures"]

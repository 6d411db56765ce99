"""ganzoo's built-in plugins. They reach the registry through the ``ganzoo`` entry-point group,
exactly as a third-party package does, and import only ganzoo's public API."""

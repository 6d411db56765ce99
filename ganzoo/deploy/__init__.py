"""Deployment: ONNX export with parity checks (torch) and the torch-free side of an exported file.

:mod:`~ganzoo.deploy.export` needs torch; :mod:`~ganzoo.deploy.contract`,
:mod:`~ganzoo.deploy.runtime`, :mod:`~ganzoo.deploy.pictures` and :mod:`~ganzoo.deploy.cpu_graph`
never import it (a test proves it), so this package's ``__init__`` imports nothing.
"""

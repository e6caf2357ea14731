"""Extensions and scripts: discovery, installation and updates, the extension index, preload flags, page assets.

Keep this file free of imports: launch.py reaches `modules.plugins.preload` under the system Python,
before the virtual environment (and its packages) exist.
"""

"""Configuration: the scalar types, the secret declaration, the whole `Config` and its loader.

Import the module you need (`poolwatch.config.load`, `.model`, `.fields`): this package imports
nothing itself, so a plugin's settings may use `fields` without loading every other plugin.
"""

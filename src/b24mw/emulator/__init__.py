"""A local Bitrix24 portal that behaves like the real one on the wire (docs/emulator.md).

Nothing is imported here, so importing any sub-module does not load the whole
portal (and cannot close an import cycle through this file). The entry points:
`b24mw.emulator.app.create_app`, `b24mw.emulator.config.EmulatorConfig`,
`b24mw.emulator.portal.Portal`; docs/emulator.md maps the sub-packages.
"""

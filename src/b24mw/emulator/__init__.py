"""A local Bitrix24 portal that behaves like the real one on the wire (docs/emulator.md)."""

from b24mw.emulator.app import create_app
from b24mw.emulator.config import EmulatorConfig
from b24mw.emulator.portal import Portal

__all__ = ["EmulatorConfig", "Portal", "create_app"]

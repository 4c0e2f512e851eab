"""The `/_emulator/` control API (not Bitrix24) and the local application's OAuth routes."""

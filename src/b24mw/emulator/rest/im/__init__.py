"""Chats: task chats and `im.dialog.messages.get`."""

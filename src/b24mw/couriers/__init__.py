"""The courier directory (README "Resources")."""

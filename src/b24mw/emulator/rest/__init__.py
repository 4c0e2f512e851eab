"""The REST surface: transport, batch, scopes, OAuth and the methods by area."""

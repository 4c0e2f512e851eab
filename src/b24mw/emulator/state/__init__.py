"""The portal's data (tasks, CRM, the call log) and the switches the control API changes."""

"""CRM: deals, leads, stages, pipelines, timeline comments."""

"""Tasks: `tasks.task.*`, `task.commentitem.*`, access rules, filters, views."""

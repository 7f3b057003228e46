"""Disputes and validators: the chain event watcher, the Celery app and tasks, the validation pipeline,
verdict submission, opening disputes and resolving them. See docs/validators.md."""

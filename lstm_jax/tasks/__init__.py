"""Tasks: synthetic long-range problems (and data-backed ones), behind one interface.

See :mod:`lstm_jax.tasks.registry` for the interface; :func:`make_task` builds one by name.
"""

from lstm_jax.tasks.registry import Batch, Task, TaskSpec, make_task, register_task, task_names

__all__ = ["Batch", "Task", "TaskSpec", "make_task", "register_task", "task_names"]

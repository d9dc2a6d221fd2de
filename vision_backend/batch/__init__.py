"""Batch work over folders of photos: the pages' models and settings, on this machine or on a Ray cluster.

``paths`` turns what a person types (files, folders, globs, a list file) into one ordered list;
``tasks`` holds one object per subcommand that loads its models once and turns (path, bytes) into
rows; ``output`` writes rows as CSV, JSON Lines or Parquet and knows what a resumed run has done;
``local`` runs a task in this process, ``ray_runner`` the same task on Ray Data. The command line
is ``python -m vision_backend``.
"""

from vision_backend.batch.paths import expand
from vision_backend.batch.tasks import TASKS, Task

__all__ = ["TASKS", "Task", "expand"]

"""Open transparency-log formats (C2SP): signed notes, checkpoints, tiles. Pure functions, no I/O."""

"""Running a sweep: the runner, the executors, the supervised workers and what runs a cell."""

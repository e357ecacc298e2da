"""Rater quality control services: reliability (pure computation), actions (pause, exclude,
extra raters, proposals, undo; the audit log), recompute (the run), policy, exports."""

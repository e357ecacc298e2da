"""Active-learning services (writes), one module per concern; the reads are in
aggregation/learning/selectors.py.

- runs: request a retraining, claim it, run it with a heartbeat;
- run_artifacts: the training export a run reads and the checkpoint it uploads;
- evaluation: compare a new version with the active one, the activation rule, an admin's
  activation;
- predictions: recompute the active version's predictions and the queue order;
- schedule: which campaigns are due, the beat tick;
- exports: inpainting masks and the fine-tuning selection;
- settings: a campaign's learning settings;
- versions: recording a version's progress fields, and the run's heartbeat.

Locks: "one run per campaign" is the partial unique constraint on ModelVersion (status in
queued/running); retrain_request relies on it instead of a cache lock, so it also holds
across processes and after crashes. retrain_run holds the version's row lock only while it
changes the status, never during training. Activation (by the rule or by an admin) is
serialised by the row lock on the campaign's LearningSettings, held only to compare and
record, never during an evaluation (see evaluation.py).
"""

"""The Ray Train side: the ``train_loop_per_worker`` of a search and of an evaluation, the epoch
bookkeeping they share (``Worker``: resume, MLflow, checkpoint, report), and the one TorchTrainer."""

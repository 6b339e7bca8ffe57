"""What sddarts works around in the libraries it runs on, each with the version it targets (a
workaround for a newer release is checked against it first). The workers' twin is
``sddarts.trainables.workers.ray_compat``.

=====================================  ===========  =========================================================
where                                  targets      what it works around
=====================================  ===========  =========================================================
``ray_console.quiet_consoles``         Ray 2.60     PreemptionWatcher's error line on every Train run; Tune's
                                       MLflow 3.17  start block; MLflow's store set-up and artifact progress bars
``ray_local.grpc_handshake``           Ray 2.60     an ``--address`` that accepts TCP but is no Ray head (the
                                                    HTTP/2 preface shows whether a gRPC server answers)
``ray_local.forget_dead_cluster``      Ray 2.60     a stale ``ray start`` record (private ``ray._common.utils``)
                                                    makes Train's placement-group cleaner wait on a dead GCS
``ray_local.local_ray_options``        Ray 2.60     two local Rays on one machine: Train V2's cleaner asks the
                                                    State API for "the" cluster (RAY_API_SERVER_ADDRESS)
``ray_local.LOCAL_TRAIN_ENV``          Ray 2.60     a local Ray's Train runs: the controller's 2 s poll of its
                                                    workers, and a PreemptionWatcher actor per run (spot nodes)
``tune_state_saves``                   Ray 2.60     a failed copy of Tune's experiment state (a 20-line
                                                    traceback) and the last state missing on storage
``tune_interrupts``                    Ray 2.60     a Ctrl-C'ed fit returns its running trials TERMINATED, like
                                                    finished ones (Tune puts back the SIGINT handler it found)
``workers.ray_compat.worker_setup``    Ray 2.60     the autoscaling coordinator's "safe to ignore" traceback
``workers.ray_compat.quiet_worker_logs`` Ray 2.60   Train's log of every report (a logger named after a
                                                    private module's path)
``workers.ray_compat.torch_trainer_class`` Ray 2.60 a ``DatasetManager`` actor (one more process) per Train
                                                    run that passes no Ray Dataset (a private callback); with
                                                    ``placement_group_cleaner=False`` (the CLI) no detached
                                                    PlacementGroupCleaner actor either
``tuning.trial.search_trial``          Ray 2.60     a Train controller that Tune stops (ASHA) while its workers
                                                    die with it restarts them on its way out: that worker
                                                    group's placement group is never freed (the GCS frees one
                                                    once its creator actor and job are dead, and the actor's
                                                    death came first). A trial's Train runs restart nothing
                                                    (``max_failures=0``); Tune restarts the trial from its
                                                    checkpoint instead (``--max-failures`` times)
``tracking.links.TRAINING_VIEW``       MLflow 3.17  the UI opens runs in its GenAI view unless told
``tracking.registry.process_tracking_uri`` MLflow 3.17 a version whose source is ``models:/m-...`` is
                                                    resolved through the process-wide tracking URI, not its
                                                    client's (a private module's global, restored after)
``workers.search_loop.build_state``    torch 2.14   DDP's deprecated ``broadcast_buffers`` (its FutureWarning):
                                                    ``forward_sync_buffers=False`` instead
=====================================  ===========  =========================================================
"""

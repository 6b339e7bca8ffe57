"""The SD-DARTS algorithm and its measurements, in torch alone (no Ray, no MLflow): the step
(``search_step``), the SD term and its teachers (``distill``), the alpha step (``architect``), the
field's fixes, the epoch (``epoch``), the held-out measurements, sharpness and DARTS-ES, and
``Searcher``, the whole search on one process."""

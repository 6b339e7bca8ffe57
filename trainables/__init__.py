"""The trainables: the SD-DARTS algorithm in torch alone (``sd_darts``), the datasets
(``data``), and the Ray Train workers that run the algorithm (``workers``); ``config`` is what
all three read."""

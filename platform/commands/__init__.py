"""The ``sddarts`` command line: its parser (flags generated from the configs and options), the
commands that call the job and tuning functions, and what they print."""

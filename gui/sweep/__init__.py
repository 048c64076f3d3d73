"""The Sweep panel: a sweep's settings, Start/Stop, the live accuracy-vs-cost scatter with its
Pareto front, the table of trials and Apply (see :mod:`.panel`)."""

"""Fair comparisons of recurrent architectures under one declared protocol.

``protocol``: the TOML file (arms, tasks, lengths, budget, lr grid, seeds, success criteria);
``outcome``: success and steps-to-success from a run's validation curve, within the budget;
``stats``: Wilson score intervals, paired percentile bootstrap; ``run``: the resumable loop and
test scoring of the selected configurations; ``report``: the table, CSV/JSON and the figure.
See docs/compare.md.
"""

from lstm_jax.compare.protocol import Protocol, load_protocol
from lstm_jax.compare.run import collect, run_comparison
from lstm_jax.compare.stats import paired_bootstrap, wilson

__all__ = ["Protocol", "collect", "load_protocol", "paired_bootstrap", "run_comparison", "wilson"]

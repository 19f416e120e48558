"""Figures, each a function from results files (or the dicts read from them) to a PNG.

One module per subject: ``states`` (demo hidden-state norms), ``probes`` (gradient decay),
``training`` (curves), ``compare`` (runs overlaid), ``imdb`` (the essay's EDA figures). Every
figure follows the one style of :mod:`lstm_jax.plots.style` (line style per quantity, decade log
ticks, labelled axes, legends outside the axes).
"""

"""Figures, each a function from results files (or the dicts read from them) to a PNG.

One module per subject: ``states`` (demo hidden-state norms), ``probes`` (gradient decay),
``training`` (curves), ``imdb`` (the essay's EDA figures).
"""

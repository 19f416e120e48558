import sys

from lstm_jax.cli import main

sys.exit(main())

"""Benchmarks: training-step throughput against PyTorch and the matmul roofline, compile time and
peak memory against T. Run ``make bench`` (or ``python -m benchmarks.run --help``)."""

"""Benchmarks of training-analytics: this library vs the older system's algorithm vs PostgreSQL.

Run ``python -m training_analytics.bench`` (or ``training-analytics bench``): the quick suite;
``--full`` runs every size; ``--help`` lists the options.
Timings live here and never in the test suite: tests check answers, this package measures speed,
and every comparison it makes first checks that both sides give the same answers on the data.
"""

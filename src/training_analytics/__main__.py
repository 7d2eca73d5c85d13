"""``python -m training_analytics``: the same command line as ``training-analytics``."""

from .cli import main

if __name__ == "__main__":
    main()

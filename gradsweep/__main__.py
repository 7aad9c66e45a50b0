"""``python -m gradsweep +sweep=NAME [key=value ...]``: see gradsweep.cli."""

from gradsweep.cli import main

if __name__ == "__main__":
    main()

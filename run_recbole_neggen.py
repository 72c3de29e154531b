"""Entry point: ``python run_recbole_neggen.py --model=NegGen --dataset=baby`` (see ``--help``)."""
import sys

from recbole_neggen.cli import main

if __name__ == "__main__":
    sys.exit(main())

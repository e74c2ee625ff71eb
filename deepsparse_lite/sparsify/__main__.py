"""``python -m deepsparse_lite.sparsify`` == the ``deepsparse_lite.sparsify`` console script."""
import sys

from deepsparse_lite.sparsify.cli import main

sys.exit(main())

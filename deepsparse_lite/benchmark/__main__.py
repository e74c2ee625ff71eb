"""``python -m deepsparse_lite.benchmark`` == the ``deepsparse_lite.benchmark`` console script."""
from deepsparse_lite.benchmark.benchmark_model import main

main()

import sys

from deepsparse_lite.server.cli import main

sys.exit(main())

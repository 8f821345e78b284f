import sys

from ketnoi.cli import main

sys.exit(main())

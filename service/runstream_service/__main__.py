import sys

from runstream_service.cli import main

sys.exit(main())

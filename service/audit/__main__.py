import sys

from service.audit.cli import main

sys.exit(main())

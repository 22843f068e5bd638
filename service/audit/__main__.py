from service.audit.cli import main
from service.process import exit_now

exit_now(main())

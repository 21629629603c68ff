import sys

from comfyload.orchestration.cli import main

sys.exit(main())

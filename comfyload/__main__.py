import sys

from comfyload.cli import main

sys.exit(main())

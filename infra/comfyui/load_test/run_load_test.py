"""The seed runbook's entry point (reliability roadmap 2.2, baseline checklist 3), kept so its
commands run unchanged:

    python run_load_test.py --server http://127.0.0.1:8188 --workflow ../samples/book_medium.json \
        --jobs 12 --concurrency 4 --timeout 420 --output ../../observability/load_2024-06-xx.json
    jq '.summary' ../../observability/load_2024-06-xx.json

It is `python -m comfyload run` with the same flags (--server = --host, --timeout =
--per-prompt-timeout); every other option of that command works here too."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

if __name__ == "__main__":
    try:
        from comfyload.orchestration.cli import main
    except ImportError:  # a python without ComfyLoad installed: the project's own venv runs it
        venv_python = REPO / ".venv" / "bin" / "python"
        if not venv_python.exists():
            sys.exit(f"error: ComfyLoad is not set up here: run `make setup` in {REPO} first")
        os.execv(venv_python, [str(venv_python), "-m", "comfyload", "run", *sys.argv[1:]])
    sys.exit(main(["run", *sys.argv[1:]]))

"""The seed runbook's entry point (reliability roadmap 2.2, baseline checklist 3), kept so its
commands run unchanged:

    python run_load_test.py --server http://127.0.0.1:8188 --workflow ../samples/book_medium.json \
        --jobs 12 --concurrency 4 --timeout 420 --output ../../observability/load_2024-06-xx.json
    jq '.summary' ../../observability/load_2024-06-xx.json

It is `python -m comfyload run` with the same flags (--server = --host, --timeout =
--per-prompt-timeout); every other option of that command works here too."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from comfyload.orchestration.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))

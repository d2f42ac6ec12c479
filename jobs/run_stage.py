"""Entrypoint for `ray job submit` that runs the pipeline up to one stage.

ray job submit --working-dir . -- python jobs/run_stage.py topics configs/demo.yaml
"""

from __future__ import annotations

import sys

from mpsynth.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Entrypoint for `ray job submit`: the whole pipeline on the cluster the job runs in.

ray job submit --working-dir . -- python jobs/run_pipeline.py configs/demo.yaml --set seed=1
"""

from __future__ import annotations

import sys

from mpsynth.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))

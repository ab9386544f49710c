"""Long fuzzing run of decoding, quality.measure and the HTTP API (the test suite runs them briefly).

    python scripts/fuzz.py [--examples 5000]

Runs the property-based fuzz tests (hypothesis) with many more examples, plus schemathesis
against the service's OpenAPI document, and prints pytest's summary.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=5000)
    args = parser.parse_args()
    env = {**os.environ, "VISION_FUZZ_EXAMPLES": str(args.examples), "YOLO_OFFLINE": "1"}
    tests = ["tests/test_decode.py", "tests/test_quality_measure.py", "tests/test_openapi_fuzz.py"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-k", "fuzz", *tests]
    return subprocess.call(cmd, cwd=REPO, env=env)


if __name__ == "__main__":
    raise SystemExit(main())

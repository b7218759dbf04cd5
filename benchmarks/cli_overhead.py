"""Where a short command's time goes: `authorbot dataset` on cached data, with Prefect's temporary
server and with the one `authorbot server start` keeps, measured in the same run.

The breakdown: the interpreter with authorbot's CLI imported; the flow modules (Prefect, pandas,
pyarrow); the whole command with a temporary server (started and stopped by the command); the
whole command against a kept server. The temporary server's share is the difference of the two.
Run: python benchmarks/cli_overhead.py [--repeats 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "gutenberg"


def seconds(cmd: list[str], env: dict, repeats: int) -> float:
    """Median wall-clock seconds of a command over repeats runs (each must succeed)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PREFECT_HOME": f"{tmp}/prefect", "PYTHONPATH": str(ROOT)}
        env.pop("PREFECT_API_URL", None)
        dataset = [python, "-m", "flows.cli", "dataset", "--book", "1342", "--mirror", str(MIRROR)]
        dataset += ["--data-dir", f"{tmp}/data", "--out", f"{tmp}/out"]
        subprocess.run(dataset, env=env, check=True, capture_output=True)  # fills the caches and the database
        interpreter = seconds([python, "-c", "import flows.cli"], env, args.repeats)
        flows = seconds([python, "-c", "import flows.corpus"], env, args.repeats)
        temporary = seconds(dataset, env, args.repeats)
        subprocess.run([python, "-m", "flows.cli", "server", "start"], env=env, check=True, capture_output=True)
        try:
            kept = seconds(dataset, env, args.repeats)
        finally:
            subprocess.run([python, "-m", "flows.cli", "server", "stop"], env=env, check=True, capture_output=True)
    print(f"authorbot dataset --book 1342 on cached data, medians of {args.repeats} runs:")
    print(f"  interpreter + authorbot's CLI imported   {interpreter:6.1f} s")
    print(f"  + the flow modules (Prefect, pandas)     {flows:6.1f} s")
    print(f"  whole command, temporary server          {temporary:6.1f} s")
    print(f"  whole command, kept server               {kept:6.1f} s")
    print(
        f"  the temporary server's share             {temporary - kept:6.1f} s; kept / temporary {kept / temporary:.2f}"
    )


if __name__ == "__main__":
    main()

"""Start-up stays light: ``desim --help`` imports no simulation, numerics, tracing or plotting code.

Checked by what is imported, not by timing (``benchmarks/bench_cli.py`` times it): a child process
imports the command line, prints its help, and lists the modules it loaded.
"""

import json
import subprocess
import sys

HEAVY = ("numpy", "networkx", "matplotlib", "simpy", "desim.trace", "desim.plots", "desim.describe")

LIST_MODULES = """
import json, sys
from desim.cli import main
try:
    main({args!r}, prog_name="desim")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def modules_after(*args: str) -> list[str]:
    code = LIST_MODULES.format(args=list(args))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def test_help_and_version_load_nothing_heavy():
    for args in (["--help"], ["--version"], ["run", "--help"]):
        loaded = modules_after(*args)
        assert "desim.cli" in loaded
        assert [name for name in loaded if name.split(".")[0] in HEAVY or name in HEAVY] == [], args

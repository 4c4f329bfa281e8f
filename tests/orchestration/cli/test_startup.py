"""`soundry --help` stays light: building the commands' options imports no heavy library."""

import json
import subprocess
import sys

# Each of these takes from a tenth of a second to seconds to import; none is needed to describe an option.
HEAVY = {
    "torch",
    "scipy",
    "numba",
    "matplotlib",
    "pyarrow",
    "pandas",
    "ray",
    "apache_beam",
    "transformers",
    "laion_clap",
    "soundfile",
    "av",
    "tensorboard",
}

# Every command's --help in one process: if the union of what they load is light, each one is.
SCRIPT = """
import json, sys
from orchestration.cli.main import main
for argv in json.loads(sys.argv[1]):
    try:
        main([*argv, "--help"])
    except SystemExit:
        pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""

COMMANDS = [
    [],
    ["curate"],
    ["demo-corpus"],
    ["shard"],
    ["publish"],
    ["versions"],
    ["versions", "list"],
    ["versions", "show"],
    ["versions", "diff"],
    ["versions", "verify"],
    ["versions", "export-sat"],
    ["view"],
    ["vocab"],
    ["analyze"],
    ["label"],
    ["encode"],
    ["train-vae"],
    ["train"],
    ["model-info"],
    ["model-init"],
    ["sample"],
    ["eval"],
    ["export"],
    ["run"],
    ["demo"],
]


def test_every_help_imports_no_heavy_library():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(COMMANDS)], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "orchestration" in loaded
    assert not loaded & HEAVY, f"--help imported {sorted(loaded & HEAVY)}"


def test_every_command_is_covered():
    import importlib

    from orchestration.cli.main import COMMAND_MODULES, _parser

    _, commands = _parser([importlib.import_module(name) for name in COMMAND_MODULES])
    assert set(commands.choices) == {argv[0] for argv in COMMANDS if argv}

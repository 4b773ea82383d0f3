import os
import sys
import tempfile
from pathlib import Path

# Make the test helpers (gradcheck.py, torch_reference.py) importable as plain modules.
sys.path.insert(0, str(Path(__file__).parent))

# The token cache of every text a test trains on goes to a folder of this run, not the user's
# ~/.cache/rnnkit (a test that needs a named corpus sets its own RNNKIT_CACHE).
if "RNNKIT_CACHE" not in os.environ:
    os.environ["RNNKIT_CACHE"] = tempfile.mkdtemp(prefix="rnnkit-test-cache-")

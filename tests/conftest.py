import sys
from pathlib import Path

# Make the test helpers (gradcheck.py, torch_reference.py) importable as plain modules.
sys.path.insert(0, str(Path(__file__).parent))

"""Makes the generated module importable: `./build.sh bindings` writes walink_ffi.py and the
release cdylib into bindings/python/, one directory above these tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

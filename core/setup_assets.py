"""Install-time steps run by `make setup` after pip: verify and build model files offline.

Each step is idempotent and quick when its output is already present and verified.
"""

from __future__ import annotations

import importlib
import sys

# (module, function) pairs; a module that is not there yet is skipped with a note.
STEPS: tuple[tuple[str, str], ...] = (
    ("models.mini_xception", "load_mini_xception"),
    ("models.convert_facenet", "ensure_weights"),
    ("core.llm", "ensure_local_model"),
)


def main() -> int:
    for module_name, func in STEPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        fn = getattr(module, func, None)
        if fn is None:
            continue
        fn()
        print(f"setup: {module_name}.{func} ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

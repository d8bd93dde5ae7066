"""The `imageeditor` console script: parse, run one subcommand, turn errors into exit codes.

Exit codes: 0 success; 1 a failed call, or a watched task that ended FAILED or CANCELLED;
2 a usage error (argparse's own convention); 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from imageeditor.cli.admin import MissingExtra
from imageeditor.cli.output import error_json, format_error
from imageeditor.cli.parser import build_parser
from imageeditor.core.errors import ImageEditorError
from imageeditor.sdk.credentials import api_key_hint, resolve_address


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]) and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except ImageEditorError as error:
        if getattr(args, "json", False):
            print(error_json(error), file=sys.stderr)
        else:
            print(format_error(error, resolve_address(), api_key_hint()), file=sys.stderr)
    except MissingExtra as error:
        print(f"error: {error}", file=sys.stderr)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit-time flush of
        # stdout from failing on the closed pipe too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as error:
        # A file that cannot be read or written: name it, no traceback.
        target = f"{error.filename}: " if error.filename else ""
        print(f"error: {target}{error.strerror or error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())

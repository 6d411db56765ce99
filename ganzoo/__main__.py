"""``python -m ganzoo``: the ganzoo command (what ``torchrun ... -m ganzoo train ARCH`` starts).

Under torchrun every process parses the same command line, so a usage error would be printed once
per process: only rank 0 prints it (the environment says which rank this is; no torch import).
"""

import os
import sys

from .cli.main import main


def _quiet_rank() -> bool:
    return os.environ.get("WORLD_SIZE", "1") not in ("", "1") and os.environ.get("RANK", "0") not in ("", "0")


if __name__ == "__main__":
    if _quiet_rank():
        import click

        from .cli.main import cli

        try:
            cli.main(prog_name="ganzoo", standalone_mode=False)
        except click.exceptions.UsageError as exc:  # a bad option: rank 0 shows the same one
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:  # this process's own error: shown
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            sys.exit(1)
    else:
        main()

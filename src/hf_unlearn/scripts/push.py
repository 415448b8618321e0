"""Upload an unlearned model folder (written by ``hf-unlearn forget`` or ``demo``) to the Hugging Face Hub.

    hf-unlearn push --folder vit-digits-no3 --repo_id user/vit-digits-no3
    hf-unlearn push --folder vit-digits-no3 --repo_id user/vit-digits-no3 --private --revision review

The token comes from HF_TOKEN or the stored login. A failed upload exits with status 1; running the command again
retries it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .args import PushArguments
from .common import CLIError, HfUnlearnParser, parsing, push_errors, run

PROG = "hf-unlearn push"


def make_parser(prog: str = PROG) -> HfUnlearnParser:
    return HfUnlearnParser(
        (PushArguments,),
        prog,
        "Upload an unlearned model folder (from `hf-unlearn forget` or `demo`) to the Hub; the token comes from "
        "HF_TOKEN or the stored login.\n\n  hf-unlearn push --folder vit-digits-no3 --repo_id user/vit-digits-no3",
    )


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Runs the command; returns the exit status (errors are one line on stderr)."""
    return run(prog, lambda a: push(a, prog), argv)


def push(argv: Sequence[str], prog: str = PROG) -> int:
    parser = make_parser(prog)
    with parsing(parser):
        (args,) = parser.parse(argv)
    folder, repo_id = args.folder, args.repo_id
    if not os.path.isdir(folder):
        raise CLIError(f"--folder {folder!r} is not a folder.")
    if not os.path.isfile(os.path.join(folder, "unlearning_report.json")):
        raise CLIError(f"--folder {folder!r} has no unlearning_report.json: write it with `hf-unlearn forget` first.")
    from .. import hub
    from ..utils import is_hub_id

    if not is_hub_id(repo_id):
        raise CLIError(f"--repo_id {repo_id!r} is not a repository id such as 'user/name'.")
    with push_errors():
        url = hub.push_unlearned(
            repo_id, folder, private=args.private, revision=args.revision, commit_message=args.commit_message
        )
    if url is not None:
        print(f"pushed {folder} to {repo_id}: {url}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m hf_unlearn.scripts.push"))

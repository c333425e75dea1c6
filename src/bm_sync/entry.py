"""The `bm` console entry: ask a running watcher first, else run the full CLI.

`bm status [PATH] [--json]` and `bm sync [PATH] [--json] [--quiet] [--wait] [--no-versions]
[--db URL]` are answered by the folder's `bm watch` when one is healthy (`bm_sync.fsmonitor`),
and a plain `bm search` on SQLite by `bm_sync.search_fast`, before typer and the sync engine
are imported: start-up is most of a no-change status or of a search. Every other command line,
and every doubt, goes to `bm_sync.cli.main`, which does the work itself. Only the standard
library (and the search modules, which use only it) is imported here.
"""

from __future__ import annotations

import os
import sys

# How long a `bm sync` waits for the watcher's batch: a big batch takes a while, and the
# alternative (syncing directly) would only wait for the same lock.
SYNC_REPLY_TIMEOUT_S = 3600.0


def fast_request(arguments: list[str]) -> tuple[str, dict[str, object], bool] | None:
    """(folder, request, quiet) for a command line the watcher can answer, else None."""
    if not arguments or arguments[0] not in ("status", "sync"):
        return None
    command, rest = arguments[0], arguments[1:]
    request: dict[str, object] = {"op": command, "json": False}
    flags = {"--json"} if command == "status" else {"--json", "--quiet", "-q", "--wait",
                                                    "--no-versions"}
    positional: list[str] = []
    quiet = False
    database = os.environ.get("BM_DATABASE_URL") or None
    position = 0
    while position < len(rest):
        argument = rest[position]
        position += 1
        if argument in flags:
            request["json"] = request["json"] or argument == "--json"
            quiet = quiet or argument in ("--quiet", "-q")
            if argument == "--no-versions":
                request["versions"] = False
        elif command == "sync" and argument == "--db" and position < len(rest):
            database = rest[position]
            position += 1
        elif command == "sync" and argument.startswith("--db="):
            database = argument.removeprefix("--db=")
        elif argument.startswith("-") or positional:
            return None  # anything else is the full CLI's (help, hash options, errors)
        else:
            positional.append(argument)
    target = positional[0] if positional else "."
    if command == "sync":
        request["db"] = database
        request.setdefault("versions", True)
    request["target"] = os.path.abspath(target)
    return target, request, quiet


def try_watcher(arguments: list[str]) -> int | None:
    """The exit code of a command the watcher answered, or None (run the full CLI)."""
    from bm_sync import fsmonitor

    found = fast_request(arguments)
    if found is None:
        return None
    target, request, quiet = found
    root = fsmonitor.find_state_root(target)
    if root is None:
        return None
    timeout = SYNC_REPLY_TIMEOUT_S if request["op"] == "sync" else fsmonitor.REPLY_TIMEOUT_S
    answer = fsmonitor.ask(root, request, timeout=timeout)
    if answer is None:
        return None
    return fsmonitor.print_answer(answer, quiet=quiet and not request["json"])


def main() -> None:
    arguments = sys.argv[1:]
    try:
        exit_code = try_watcher(arguments)
    except Exception:  # the fast path is an optimisation: any surprise, and we do the work
        exit_code = None
    if exit_code is not None:
        sys.stdout.flush()
        sys.exit(exit_code)
    if arguments[:1] == ["search"]:
        from bm_sync import search_fast

        try:
            answered = search_fast.answer(arguments)
        except Exception:  # as above: the full CLI redoes it, and says what is wrong
            answered = None
        if answered is not None:
            search_fast.print_result(*answered)
            sys.stdout.flush()
            sys.exit(0)
    from bm_sync.cli import main as full_cli

    full_cli()


if __name__ == "__main__":
    main()

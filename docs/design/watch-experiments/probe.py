"""Run awatch on ROOT and print each batch as one JSON line (time.time() stamps)."""
import asyncio, json, os, sys, time
from watchfiles import awatch

async def main() -> None:
    root = sys.argv[1]
    kw = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    kw.setdefault("watch_filter", None)
    print(json.dumps({"t": time.time(), "start": True, "pid": os.getpid()}), flush=True)
    try:
        async for changes in awatch(root, **kw):
            items = sorted([c.name, os.path.relpath(p, root)] for c, p in changes)
            out = {"t": time.time(), "n": len(items)}
            out["changes"] = items if len(items) <= 60 else items[:20]
            print(json.dumps(out), flush=True)
    except BaseException as e:  # report how watchfiles surfaces errors
        print(json.dumps({"t": time.time(), "error": f"{type(e).__module__}.{type(e).__name__}: {e}"}), flush=True)
        raise

asyncio.run(main())

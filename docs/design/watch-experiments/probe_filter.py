import asyncio, json, os, sys, time
from watchfiles import awatch, DefaultFilter
root = sys.argv[1]; mode = json.loads(sys.argv[2])["mode"]
async def main():
    async for ch in awatch(root, watch_filter=None if mode == "none" else DefaultFilter(), debounce=800):
        print(json.dumps({"t": time.time(), "n": len(ch), "changes": sorted([c.name, os.path.relpath(p, root)] for c, p in ch)}), flush=True)
asyncio.run(main())

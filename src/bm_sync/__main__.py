from bm_sync.cli import main

main()

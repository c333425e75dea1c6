from bm_sync.entry import main

main()

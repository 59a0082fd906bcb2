from netd.daemon import main

raise SystemExit(main())

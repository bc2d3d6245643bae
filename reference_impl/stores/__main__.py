from .tool import main

raise SystemExit(main())

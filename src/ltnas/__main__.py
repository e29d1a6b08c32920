from ltnas.cli import main

raise SystemExit(main())

from gqn.cli import main

raise SystemExit(main())

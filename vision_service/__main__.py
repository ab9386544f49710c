from vision_service.cli import main

raise SystemExit(main())

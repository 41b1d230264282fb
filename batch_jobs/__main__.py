from batch_jobs.cli import main

raise SystemExit(main())

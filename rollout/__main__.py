"""`python -m rollout`: the same as the `rollout` command."""

from rollout.cli import main

raise SystemExit(main())

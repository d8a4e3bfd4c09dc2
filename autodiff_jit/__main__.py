"""`python -m autodiff_jit bench|ir ...`: the same as the `autodiff-jit` command."""
from .cli import main

raise SystemExit(main())

# autograd's test files import `autograd`, which only ../shim.py provides: they run through
# ../test_autograd_suite.py and ../run_suite.py (each in its own process, shim installed), not
# in the project's own pytest session.
collect_ignore_glob = ["test_*.py", "numpy_utils.py"]

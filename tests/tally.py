"""The pass and fail count of a test script run by hand (tests/sam_local.py,
tests/generated_client.py), and its closing `NAME: N passed, M failed` line, which
scripts/test adds up."""

results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    """Counts one check and prints it; returns whether it passed."""
    results["passed" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"), flush=True)
    return ok


def close(name):
    """Prints the closing line; the exit status for it (1 on a failure)."""
    print(f"{name}: {results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0

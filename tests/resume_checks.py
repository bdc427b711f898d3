"""The resume check the thread-driven steppers share (runs/optim/minimize.py, global_methods.py):
a run resumed from the checkpoint after any of several steps goes on exactly as it went."""

from runs.optim import decode_checkpoint, encode_checkpoint


def comparable(step):
    """Everything a step says except its elapsed time, as plain values."""
    return (step.seq, step.nit, step.x.tolist(), float(step.fun), step.nfev, step.njev,
            None if step.jac is None else step.jac.tolist(), step.phase,
            dict(step.extra), {k: v.tolist() for k, v in step.bulky.items()})


def assert_resumes_exactly(make, spec, check_result=None):
    """Run `make(spec)` to the end with a checkpoint after every step; resumed after step 0, 1,
    the middle, the last two and the end, it hands out the same steps and Result. `check_result`
    (optional) is called with each resumed Result (e.g. against scipy's own)."""
    s = make(spec)
    steps, cps = [], []
    for step in s:
        steps.append(step)
        cps.append(encode_checkpoint(s.checkpoint()))
    final = encode_checkpoint(s.checkpoint())
    n = len(steps)
    assert n >= 4
    for k in sorted({0, 1, n // 2, n - 2, n - 1}):  # resume after step k
        r = make(spec)
        r._restore(decode_checkpoint(cps[k]))
        assert [comparable(x) for x in r] == [comparable(x) for x in steps[k + 1:]], f"after step {k}"
        assert r.result.to_dict() == s.result.to_dict()
        if check_result:
            check_result(r.result)
    assert [comparable(x) for x in make(spec)] == [comparable(x) for x in steps]  # and from the start
    done = make(spec)
    done._restore(decode_checkpoint(final))
    assert list(done) == [] and done.result.to_dict() == s.result.to_dict()
    return steps


def stop_after(stepper, k):
    """Step `stepper` to the end, asking it to stop once step k has come: the steps it gave."""
    steps = []
    for step in stepper:
        steps.append(step)
        if step.seq == k:
            stepper.request_stop()
    return steps


def checkpoint_of_a_stop(stepper, k):
    """The checkpoint right after a stop was asked at step k (the stepper is then closed)."""
    for step in stepper:
        if step.seq == k:
            stepper.request_stop()
            cp = stepper.checkpoint()
            break
    stepper.close()
    return cp

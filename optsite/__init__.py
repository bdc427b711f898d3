import os

# Each run is driven by one thread and several runs share the server's cores; OpenBLAS's own
# thread pool only adds contention on the small vectors these solvers use (a 37-step L-BFGS-B
# run was seen taking 0.5 s instead of 2 ms on a busy 2-core machine). Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

"""digits core: data, features, models, training, evaluation and prediction, free of any UI."""

import threading

from tqdm import tqdm

# tqdm's default lock includes one shared across processes: a worker process killed while it held it (a sweep's
# trial killed mid-run, then retried) left every later progress bar of this process, UMAP's included, waiting on
# it forever. Bars in one process only need a lock between its threads.
tqdm.set_lock(threading.RLock())

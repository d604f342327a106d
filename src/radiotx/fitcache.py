"""An in-process stand-in for ``joblib.Memory`` in a pipeline's ``memory`` parameter.

The inner-CV search shares the fitted preprocessing, selection and resampling between
candidates (see :func:`radiotx.evaluate.tune_each`). ``joblib.Memory`` does this on disk:
it hashes every argument with its pure-Python pickler and stores every result as a
pickle, which on a wide table (1,000 genes) cost a quarter of an inner CV's time. The
search runs in one process, so the results can stay in memory: the key is a digest of
the unfitted step's parameters and of the data's bytes, the value the step's output and
the fitted step, handed back as a copy, as a load from disk would be.
"""

from __future__ import annotations

import copy
import hashlib
import pickle
from collections import OrderedDict

import joblib
import numpy as np
import pandas as pd


class FitCache:
    """``Pipeline(..., memory=FitCache())``: fits of identical (step, data) pairs run once
    per cache. Clones of a pipeline share the cache (it is a handle, not a value)."""

    location = "memory"  # not None: scikit-learn then clones each step before fitting

    def __init__(self):
        self._store: dict[str, tuple] = {}

    def cache(self, func, ignore=None):
        """``func`` memoised; the keyword arguments named in ``ignore`` (scikit-learn's
        progress messages) are left out of the key, as in ``joblib.Memory.cache``."""
        return _Cached(func, self._store, ignore or ())

    def __len__(self) -> int:
        return len(self._store)

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):  # pickled empty: a saved model never carries the fits
        return (FitCache, ())

    def __repr__(self) -> str:
        return "FitCache()"


class _Cached:
    def __init__(self, func, store: dict, ignore=()):
        self.func, self.store, self.ignore = func, store, set(ignore)

    def __call__(self, *args, **kwargs):
        named = sorted((k, v) for k, v in kwargs.items() if k not in self.ignore)
        key = digest(self.func.__qualname__, *args, *named)
        if key not in self.store:
            self.store[key] = self.func(*args, **kwargs)
        return copy.deepcopy(self.store[key])


class Memo:
    """The last ``size`` results of a computation by key, in this process (e.g. the
    members of late fusion and stacking, which fit the same per-modality models on the
    same rows). Results are handed back as copies."""

    def __init__(self, size: int = 32):
        self.size = size
        self._store: OrderedDict[str, object] = OrderedDict()

    def get(self, key: str, compute):
        if key not in self._store:
            self._store[key] = compute()
            while len(self._store) > self.size:
                self._store.popitem(last=False)
        self._store.move_to_end(key)
        return copy.deepcopy(self._store[key])


def digest(*values) -> str:
    """A key for ``values`` (estimators, tables, arrays, ...): equal values, equal keys."""
    state = hashlib.blake2b(digest_size=20)
    for value in values:
        _update(state, value)
    return state.hexdigest()


def _update(state, value) -> None:
    """Feed ``value`` to the hash ``state``: arrays and tables by their bytes, names and types
    (fast on wide tables), anything else (an unfitted step) by its pickle."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        state.update(value[0].encode())  # a keyword argument: its name, then its value
        value = value[1]
    if isinstance(value, pd.DataFrame):
        dtypes = list(value.dtypes)
        same = all(dtype == dtypes[0] for dtype in dtypes)
        state.update(pickle.dumps((value.columns, value.index, dtypes[:1] if same else dtypes)))
        _values(state, value.to_numpy())
    elif isinstance(value, pd.Series):
        state.update(pickle.dumps((value.name, value.dtype, value.index)))
        _values(state, value.to_numpy())
    elif isinstance(value, np.ndarray):
        state.update(b"array")
        _values(state, value)
    else:
        try:  # the C pickler: equal objects give equal bytes, and a miss only costs a refit
            state.update(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        except (pickle.PicklingError, TypeError, AttributeError):
            state.update(joblib.hash(value).encode())


def _values(state, array: np.ndarray) -> None:
    """Numbers by their bytes; objects (text, mixed columns) by their pickle."""
    state.update(repr((array.shape, array.dtype.descr)).encode())
    if array.dtype.hasobject:
        state.update(pickle.dumps(array, protocol=pickle.HIGHEST_PROTOCOL))
    else:
        state.update(np.ascontiguousarray(array).view(np.uint8).tobytes())

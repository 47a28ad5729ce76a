"""Argument checks shared by the public functions: one message style for every bad value.

Each check returns the value (converted where the meaning is unambiguous, e.g. a NumPy integer to
``int``) or raises :class:`~nodeutils.errors.InputError` naming the argument, the value received and
what to pass instead. Booleans are never accepted where a number is expected (``True`` is an
``int`` in Python, but ``epochs=True`` is a mistake).

- :mod:`nodeutils.checks.values`: single values (integers, numbers, choices, callables, modules, folders);
- :mod:`nodeutils.checks.labels`: what enters training and evaluation (batches, labels, loaders, models);
- :mod:`nodeutils.checks.methods`: the solver's name and its ``options={...}``;
- :mod:`nodeutils.checks.solve`: the rest of what enters an ODE solve (time span, tolerances and precision,
  state, VJP choice, checkpoints, f).
"""

from .labels import (
    check_batch,
    check_images_and_labels,
    check_labels,
    check_loader,
    check_loader_pair,
    check_model,
    check_states,
    check_states_and_labels,
)
from .methods import adaptive_methods, available_methods, check_method, check_options, solver_options
from .solve import (
    MAX_FIXED_STEPS,
    VJP_CHOICES,
    check_checkpoints,
    check_func,
    check_precision,
    check_solve_entry,
    check_state,
    check_time_span,
    check_tolerances,
    check_vjp,
)
from .values import (
    MAX_THREADS,
    check_bool,
    check_call_signature,
    check_callable,
    check_choice,
    check_folder,
    check_index,
    check_int,
    check_keywords,
    check_module,
    check_number,
    check_threads,
    describe,
    user_stacklevel,
)

__all__ = [
    "MAX_FIXED_STEPS",
    "MAX_THREADS",
    "VJP_CHOICES",
    "adaptive_methods",
    "available_methods",
    "check_batch",
    "check_bool",
    "check_call_signature",
    "check_callable",
    "check_checkpoints",
    "check_choice",
    "check_folder",
    "check_func",
    "check_images_and_labels",
    "check_index",
    "check_int",
    "check_keywords",
    "check_labels",
    "check_loader",
    "check_loader_pair",
    "check_method",
    "check_model",
    "check_module",
    "check_number",
    "check_options",
    "check_precision",
    "check_solve_entry",
    "check_state",
    "check_states",
    "check_states_and_labels",
    "check_threads",
    "check_time_span",
    "check_tolerances",
    "check_vjp",
    "describe",
    "solver_options",
    "user_stacklevel",
]

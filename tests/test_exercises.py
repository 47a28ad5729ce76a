"""The exercise machinery: placeholder detection, verdicts, error reports, hints, solutions, argument checks."""

from __future__ import annotations

import functools
import random
import re

import numpy as np
import pytest
import torch

from nodeutils import InputError, NodeUtilsError
from nodeutils.exercises import (
    Correct,
    Exercise,
    NotYet,
    ____,
    all_close,
    as_number,
    exercises_of,
    names_placeholder,
    same_values,
    shape_problem,
    tensors_like,
)

PREFIX = "Exercise 3 · doubling a tensor: "
UNANSWERED = (PREFIX + "not answered yet. Replace ____ with your code and run the cell again "
              "(exercises.double.hint() for a hint).")
HINTS = ("Multiply by a number.", "The number is 2.", "Write x * 2.")
SOLUTION = '''
def double(x):
    return 2 * x
'''


def _judge_double(answer):
    x = torch.arange(6.0).reshape(2, 3)
    result = answer(x)
    if (problem := shape_problem(result, 2 * x, what="double(x)")) is not None:
        return problem
    if same_values(result, x):
        return NotYet("You returned x unchanged.")
    if same_values(result, 2 * x):
        return Correct("Doubling is one multiplication.")
    return NotYet("Not twice x.")


def make_exercise(judge=_judge_double, **changes):
    arguments = dict(number=3, title="doubling a tensor", judge=judge, hints=HINTS, solution=SOLUTION)
    arguments.update(changes)
    return Exercise(**arguments)


@pytest.fixture
def exercise():
    return make_exercise()


# --------------------------------------------------------------------------------------------------------------
# Placeholder detection
# --------------------------------------------------------------------------------------------------------------
def _unfinished_part(x):
    return ____


ALIAS = ____
HOLDER = [____]  # the placeholder hidden in data: only the returned value shows it


def answer_returns_placeholder(x):
    return ____


def answer_nested_function(x):
    def inner(y):
        return y * ____
    return inner(x)


def answer_lambda(x):
    return (lambda y: ____)(x)


def answer_comprehension(x):
    return torch.stack([____ for _ in range(2)])


def answer_default(x, factor=____):
    return x * factor


def answer_alias(x):
    return ALIAS


def answer_calls_unfinished_part(x):
    return _unfinished_part(x)


def answer_returns_hidden_placeholder(x):
    return HOLDER[0]


def answer_uses_hidden_placeholder(x):
    return x * HOLDER[0]


def _closure_answer():
    factor = ____

    def double(x):
        return x * factor
    return double


class AnswerClass(torch.nn.Module):
    def forward(self, x):
        return ____


class AnswerNestedClass:
    class Inner:
        def go(self):
            return ____


class AnswerProperty:
    @property
    def value(self):
        return ____


class AnswerAttribute:
    factor = ____


class AnswerStatic:
    @staticmethod
    def go(x):
        return ____


class AnswerSubclass(AnswerClass):
    pass


@pytest.mark.parametrize("answer", [
    ____, answer_returns_placeholder, answer_nested_function, answer_lambda, answer_comprehension, answer_default,
    answer_alias, answer_calls_unfinished_part, _closure_answer(), AnswerClass, AnswerClass(), AnswerNestedClass,
    AnswerProperty, AnswerAttribute, AnswerStatic, AnswerSubclass, (1, ____), {"a": ____},
    functools.partial(answer_default, factor=____), lambda x: ____,
], ids=lambda a: getattr(a, "__name__", type(a).__name__))
def test_the_placeholder_is_found_in_code_and_data(answer):
    assert names_placeholder(answer)


@pytest.mark.parametrize("answer", [
    lambda x: 2 * x, AnswerClass.__mro__[1], torch.nn.Linear(2, 2), torch.ones(2), 3.0, "text", None,
    torch.tanh, functools.partial(torch.mul, other=2),
], ids=repr)
def test_finished_code_and_foreign_objects_hold_no_placeholder(answer):
    assert not names_placeholder(answer)


@pytest.mark.parametrize("answer", [answer_returns_placeholder, answer_nested_function, AnswerStatic.go])
def test_an_unanswered_exercise_is_reported_and_its_judge_never_runs(answer, capsys):
    calls = []
    exercise = make_exercise(judge=lambda a: calls.append(a) or Correct("never"))
    assert exercise.check(answer) is None
    assert capsys.readouterr().out == UNANSWERED + "\n"
    assert calls == []


@pytest.mark.parametrize("answer", [answer_returns_hidden_placeholder, answer_uses_hidden_placeholder])
def test_a_placeholder_reached_only_at_run_time_counts_as_unanswered(exercise, answer):
    assert not names_placeholder(answer)  # nothing in the code names it ...
    assert exercise.verdict(answer) == UNANSWERED  # ... but returning or computing with it is caught


def test_a_class_answer_whose_method_meets_the_placeholder_counts_as_unanswered():
    class Doubler(torch.nn.Module):
        def forward(self, x):
            return x * HOLDER[0]

    exercise = make_exercise(judge=lambda cls: _judge_double(cls()), expects="class")
    assert exercise.verdict(Doubler) == UNANSWERED


@pytest.mark.parametrize("use", [
    lambda p: p + 1, lambda p: 1 + p, lambda p: torch.ones(2) * p, lambda p: torch.tanh(p), lambda p: p.shape,
    lambda p: p(1), lambda p: p[0], lambda p: float(p), lambda p: bool(p), lambda p: torch.ones(2) @ p,
    lambda p: torch.allclose(p, torch.ones(2)),
])
def test_the_placeholder_refuses_to_act_as_a_value(use):
    with pytest.raises(TypeError, match="placeholder: replace it with your code"):
        use(____)


def test_the_placeholder_prints_as_itself_and_copies_as_itself():
    import copy
    import pickle

    assert repr(____) == str(____) == "____"
    assert copy.deepcopy(____) is ____ and pickle.loads(pickle.dumps(____)) is ____
    assert not hasattr(____, "_repr_html_")  # display machinery finds nothing, without an error


# --------------------------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------------------------
def test_correct_and_not_yet_verdicts(exercise, capsys):
    exercise.check(lambda x: x * 2)
    exercise.check(lambda x: x)
    exercise.check(lambda x: x + 1)
    assert capsys.readouterr().out.splitlines() == [
        PREFIX + "correct. Doubling is one multiplication.",
        PREFIX + "not yet. You returned x unchanged.",
        PREFIX + "not yet. Not twice x.",
    ]


@pytest.mark.parametrize(("answer", "phrase"), [
    (lambda x: None, "returned None: end the function with `return`"),
    (lambda x: [1, 2], "returned a list, not a tensor of shape (2, 3)"),
    (lambda x: 2.0, "returned the number 2.0, not a tensor"),
    (lambda x: (2 * x)[None], "returned a tensor of shape (1, 2, 3), but the result should have shape (2, 3)"),
    (lambda x: (2 * x).sum(0), "returned a tensor of shape (3,)"),
])
def test_a_wrong_type_or_shape_gets_its_own_hint(exercise, answer, phrase):
    verdict = exercise.verdict(answer)
    assert verdict.startswith(PREFIX + "not yet. double(x) ") and phrase in verdict


def test_as_number_reads_numbers_and_one_element_tensors_only():
    assert as_number(3) == 3.0 and as_number(2.5) == 2.5
    assert as_number(torch.tensor(1.5)) == 1.5 and as_number(torch.tensor([[4.0]])) == 4.0
    assert as_number(True) is None and as_number(torch.ones(2)) is None and as_number("1") is None


def test_tensors_like_names_the_wrong_kind_count_and_shape():
    like = [torch.zeros(2, 3), torch.zeros(3)]
    assert isinstance(tensors_like((torch.ones(2, 3), torch.ones(3)), like, "mu"), list)
    assert "one tensor per parameter (2 here" in tensors_like(torch.ones(3), like, "mu").message
    assert "has 1 entries, but f has 2 parameters" in tensors_like([torch.ones(2, 3)], like, "mu").message
    assert "mu[1]" in tensors_like([torch.ones(2, 3), torch.ones(1, 3)], like, "mu").message


def test_all_close_is_relative_to_each_expected_tensor_and_never_broadcasts():
    big, small = torch.tensor([1e6, 1.0]), torch.tensor([1e-6, 0.0])
    assert all_close([big + 0.05, small], [big, small])  # 5e-8 of the largest entry
    assert not all_close([big + 1.0, small], [big, small])
    assert not all_close([big, small + 0.05], [big, small])  # small's own scale, not big's
    assert not all_close([torch.tensor([1e6]), small], [big, small])
    assert not all_close([big], [big, small]) and not all_close([], [big])


def test_same_values_never_broadcasts():
    x = torch.ones(2, 3)
    assert same_values(torch.ones(2, 3), x)
    assert not same_values(torch.ones(3), x) and not same_values(torch.ones(1, 2, 3), x)
    assert not same_values([[1.0] * 3] * 2, x) and not same_values(None, x)
    assert same_values(torch.ones(2, 3, dtype=torch.float64), x)
    with pytest.raises(InputError, match="reference tensor"):
        shape_problem(x, [1, 2], what="f(x)")


def test_the_verdict_is_the_same_every_time_and_leaves_the_random_state_alone(exercise):
    def noisy_double(x):  # learner code drawing random numbers: checking must not shift the notebook's
        return 2 * x + 0 * torch.randn(x.shape) + 0 * random.random() + 0 * float(np.random.rand())

    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    verdicts = [exercise.verdict(noisy_double) for _ in range(3)]
    after = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    expected = (torch.rand(3), random.random(), np.random.rand())
    assert len(set(verdicts)) == 1 and "correct" in verdicts[0]
    assert torch.equal(after[0], expected[0]) and after[1:] == expected[1:]


def test_the_judge_draws_the_same_random_numbers_every_time():
    seen = []

    def judge(answer):
        seen.append(torch.randn(3))
        return Correct("ok.")

    exercise = make_exercise(judge=judge)
    torch.manual_seed(1)
    exercise.verdict(lambda x: x)
    torch.manual_seed(2)
    exercise.verdict(lambda x: x)
    assert torch.equal(seen[0], seen[1])


def test_grad_mode_is_restored_after_the_check(exercise):
    def answer(x):
        torch.set_grad_enabled(False)
        return 2 * x

    assert torch.is_grad_enabled()
    exercise.verdict(answer)
    assert torch.is_grad_enabled()


# --------------------------------------------------------------------------------------------------------------
# Errors in the learner's code
# --------------------------------------------------------------------------------------------------------------
def answer_divides(x):
    scale = 2
    return x * scale / 0 + torch.zeros(5)  # this line raises: shapes (2, 3) and (5,) do not broadcast


def answer_with_inner_function(x):
    return _learner_inner(x)


def _learner_inner(x):
    raise ValueError("inner refused")


def test_an_error_is_reported_with_the_learners_line_and_no_traceback(exercise, capsys):
    assert exercise.check(answer_divides) is None  # the cell does not fail
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.startswith(PREFIX + "your code raised RuntimeError: The size of tensor a (3) must match")
    line = answer_divides.__code__.co_firstlineno + 2
    assert f"(line {line}: return x * scale / 0 + torch.zeros(5)  # this line raises" in out
    assert out.rstrip().endswith(HINTS[0])
    assert "Traceback" not in out and ".py" not in out and "/" not in out.split(")", 1)[0]


def test_the_innermost_learner_frame_is_the_one_reported(exercise):
    verdict = exercise.verdict(answer_with_inner_function)
    line = _learner_inner.__code__.co_firstlineno + 1
    assert f"your code raised ValueError: inner refused (line {line}: raise ValueError(\"inner refused\"))" in verdict


def test_error_messages_lose_addresses_and_paths(exercise):
    def answer(x):
        message = f"cannot read /home/learner/data/mnist.npz for {object()}\nsecond line of detail"
        raise OSError(message)

    verdict = exercise.verdict(answer)
    assert "mnist.npz" in verdict and "/home" not in verdict and "0x" not in verdict
    assert "second line" not in verdict and "\n" not in verdict


def test_a_long_message_is_cut(exercise):
    def answer(x):
        raise ValueError("x" * 1000)

    assert "x" * 198 not in exercise.verdict(answer) and "xxx..." in exercise.verdict(answer)


def test_an_error_outside_the_learners_code_is_reported_without_a_line():
    def judge(answer):
        answer(torch.ones(1))
        return {}["missing"]  # raised by the judge itself, after the learner's code returned

    verdict = make_exercise(judge=judge).verdict(lambda x: x)
    assert verdict == PREFIX + "checking your answer raised KeyError: 'missing'. " + HINTS[0]


def test_a_judge_can_give_its_own_hint_for_an_error():
    def judge(answer):
        try:
            answer(torch.ones(2))
        except ZeroDivisionError as error:
            return NotYet("Do not divide by zero.", error=error)
        return Correct("ok.")

    def answer(x):
        return 1 / 0

    verdict = make_exercise(judge=judge).verdict(answer)
    line = answer.__code__.co_firstlineno + 1
    assert verdict == PREFIX + f"your code raised ZeroDivisionError: division by zero (line {line}: return 1 / 0). " \
                               "Do not divide by zero."


def test_interrupts_are_not_swallowed(exercise):
    def answer(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        exercise.check(answer)


# --------------------------------------------------------------------------------------------------------------
# Hints and solutions
# --------------------------------------------------------------------------------------------------------------
def test_hints_progress_and_then_start_again(exercise, capsys):
    for _ in range(4):
        exercise.hint()
    exercise.hint(3)
    exercise.hint()
    lines = capsys.readouterr().out.splitlines()
    numbers = [int(re.search(r"hint (\d) of 3: ", line).group(1)) for line in lines]
    assert numbers == [1, 2, 3, 1, 3, 1]
    assert lines[0] == "Exercise 3 · doubling a tensor, hint 1 of 3: Multiply by a number."
    assert lines[2].endswith("Write x * 2.")


@pytest.mark.parametrize("number", [0, 4, True, "1", 1.5])
def test_a_hint_number_out_of_range_is_refused(exercise, number):
    with pytest.raises(InputError, match="hint"):
        exercise.hint(number)


def test_the_solution_is_printed_as_code_and_not_run(capsys):
    solution = 'print("the solution ran")\n\ndef double(x):\n    return 2 * x\n'
    exercise = make_exercise(solution=solution)
    assert exercise.solution() is None
    out = capsys.readouterr().out
    assert out == "# Exercise 3 · doubling a tensor: reference solution\n" + solution
    compile(out, "<printed solution>", "exec")  # the printed text is runnable code as it stands


def test_solution_answer_runs_the_solution_with_the_notebook_imports():
    exercise = make_exercise(solution='''
        layer = nn.Linear(2, 2)
        activation = F.relu

        def double(x):
            return nodeutils.last_state(torch.stack([x, 2 * x]))
    ''')
    double = exercise.solution_answer()
    assert double.__name__ == "double" and exercise.name == "double"
    assert torch.equal(double(torch.ones(2)), torch.full((2,), 2.0))
    assert isinstance(exercise.judge(exercise.solution_answer()), Correct)


def test_the_name_defaults_to_the_last_name_the_solution_defines_and_can_be_given():
    assert make_exercise(solution="scale = 2\ndef double(x):\n    return scale * x\n").name == "double"
    named = make_exercise(solution="def double(x):\n    return 2 * x\nHELP = 1\n", name="double")
    assert named.name == "double" and named.solution_answer()(3) == 6
    with pytest.raises(InputError, match="does not define 'triple'"):
        make_exercise(name="triple").solution_answer()


def test_exercises_of_a_module_in_order():
    import types

    module = types.ModuleType("notebook99")
    module.second = make_exercise(number=2)
    module.first = make_exercise(number=1)
    module.again = module.first
    assert [e.number for e in exercises_of(module)] == [1, 2]


# --------------------------------------------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("changes", "phrase"), [
    (dict(number=0), r"Exercise\(number\) must be a positive integer; got 0"),
    (dict(number=True), r"Exercise\(number\) must be an integer, not a bool"),
    (dict(number="1"), r"Exercise\(number\) must be an integer"),
    (dict(title=""), r"Exercise\(title\) must be a non-empty string"),
    (dict(title=None), r"Exercise\(title\) must be a non-empty string; got None"),
    (dict(judge="judge"), r"Exercise\(judge\) must be a function of the answer returning Correct or NotYet"),
    (dict(hints="one hint"), r'not one string: write hints=\("...",\)'),
    (dict(hints=()), r"Exercise\(hints\) must be a non-empty tuple of strings"),
    (dict(hints=("ok", " ")), r"Exercise\(hints\[1\]\) must be a non-empty string"),
    (dict(solution="def double(x:\n"), r"solution of exercise 3 is not valid Python: .* \(line 1\)"),
    (dict(solution="print(1)\n"), r"solution of exercise 3 defines no name"),
    (dict(solution=b"def f(): pass"), r"Exercise\(solution\) must be a non-empty string"),
    (dict(name="two words"), r"Exercise\(name\) must be a Python name"),
    (dict(expects="tensor"), r"unknown Exercise\(expects\) 'tensor': choose one of function, class, value"),
])
def test_bad_exercise_arguments_are_refused_clearly(changes, phrase):
    with pytest.raises(InputError, match=phrase) as info:
        make_exercise(**changes)
    assert isinstance(info.value, (NodeUtilsError, ValueError))


def test_exercise_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        Exercise(1, "t", _judge_double, HINTS, SOLUTION)


@pytest.mark.parametrize(("answer", "phrase"), [
    ("double", r"takes your function itself, not its name in quotes: write exercises.double.check\(double\)"),
    (torch.ones(2), r"not the result of calling it; got a tensor of shape \(2,\)"),
    (None, r"not the result of calling it; got None"),
])
def test_check_refuses_what_is_not_an_answer(exercise, answer, phrase):
    with pytest.raises(InputError, match=phrase):
        exercise.check(answer)


def test_check_of_a_class_exercise_refuses_an_instance():
    exercise = make_exercise(expects="class", solution="class Double:\n    pass\n")
    with pytest.raises(InputError, match="takes your class itself, not an instance of it"):
        exercise.check(torch.nn.Identity())


def test_value_exercises_accept_any_value():
    exercise = make_exercise(expects="value", judge=lambda v: Correct("ok.") if v == "two" else NotYet("no."))
    assert exercise.verdict("two").endswith("correct. ok.")
    assert exercise.verdict(____) == UNANSWERED


def test_a_judge_returning_something_else_is_an_authoring_error():
    with pytest.raises(InputError, match=r"the judge of exercise 3 returned True; it must return Correct"):
        make_exercise(judge=lambda a: True).check(lambda x: x)


@pytest.mark.parametrize("make", [lambda: Correct(""), lambda: NotYet(None), lambda: NotYet("hint", error="boom")])
def test_verdict_objects_check_their_arguments(make):
    with pytest.raises(InputError):
        make()

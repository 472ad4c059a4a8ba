"""Where ``arrange`` puts each run of a thread's history: after the question it answers."""

from __future__ import annotations

from typing import Any

from asst_magic.backends.history import arrange


def question(n: int, at: int) -> dict[str, Any]:
    return {"id": f"q{n}", "role": "user", "created_at": at, "run_id": None}


def answer(n: int, run: str) -> dict[str, Any]:
    return {"id": f"a{n}", "role": "assistant", "created_at": 0, "run_id": run}


def run(name: str, at: int, status: str = "failed") -> dict[str, Any]:
    return {"id": name, "created_at": at, "status": status}


def shown(messages: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[str]:
    return [obj["id"] for _, obj in arrange(messages, runs)]


def test_runs_without_a_message_line_up_one_per_question_within_one_second() -> None:
    # The magic's shape: every cell posts a question and starts a run, all in one second
    # here; r1 failed and r3 was cancelled before they wrote anything.
    messages = [question(1, 7), question(2, 7), answer(2, "r2"), question(3, 7), question(4, 7)]
    runs = [run("r1", 7), run("r2", 7, "completed"), run("r3", 7, "cancelled"), run("r4", 7)]
    assert shown(messages, runs) == ["q1", "r1", "q2", "r2", "q3", "r3", "q4", "r4"]


def test_a_run_answers_the_latest_question_asked_in_an_earlier_second() -> None:
    # q1 was never answered (its run was refused); the run began after q2 was asked.
    messages = [question(1, 10), question(2, 15)]
    assert shown(messages, [run("r1", 20)]) == ["q1", "q2", "r1"]


def test_a_run_is_never_placed_before_its_question() -> None:
    messages = [question(1, 10), question(2, 30)]
    assert shown(messages, [run("r1", 20)]) == ["q1", "r1", "q2"]


def test_a_second_run_for_one_question_follows_the_first() -> None:
    messages = [question(1, 5), answer(1, "r1"), question(2, 9), answer(2, "r3")]
    runs = [run("r1", 5, "completed"), run("r2", 6), run("r3", 9, "completed")]
    assert shown(messages, runs) == ["q1", "r1", "r2", "q2", "r3"]


def test_messages_before_the_first_question_stay_first_and_answer_nothing() -> None:
    greeting = {"id": "hi", "role": "assistant", "created_at": 1, "run_id": None}
    assert shown([greeting, question(1, 3)], [run("r1", 3)]) == ["hi", "q1", "r1"]


def test_a_run_with_no_question_at_all_is_still_shown() -> None:
    assert shown([], [run("r1", 3)]) == ["r1"]

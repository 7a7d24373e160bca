"""Worker functions for the official SDK's TaskHandler (run as ``python -m tests.sdk.sdk_workers URL``).

TaskHandler starts workers in spawned processes, so the functions live at module level. No
``from __future__ import annotations`` here: the SDK passes the Task object only when the
parameter annotation is the real ``Task`` class.
"""


import sys
import threading

from conductor.client.automator.task_handler import TaskHandler
from conductor.client.configuration.configuration import Configuration
from conductor.client.http.models.task import Task
from conductor.client.worker.worker import Worker


def double(task: Task) -> dict[str, int]:
    return {"y": 2 * int(task.input_data["x"])}


def flaky(task: Task) -> dict[str, int]:
    # The first attempt of every execution fails; the server retries it as a new task.
    if task.retry_count == 0:
        raise RuntimeError(f"flaky failure on attempt {task.retry_count}")
    return {"y": int(task.input_data["y"]), "attempt": task.retry_count}


def add_one(task: Task) -> dict[str, int]:
    return {"z": int(task.input_data["y"]) + 1}


def main(api_url: str) -> None:
    cfg = Configuration(server_api_url=api_url)
    workers = [
        Worker(task_definition_name="sdk_double", execute_function=double, poll_interval=10, thread_count=4),
        Worker(task_definition_name="sdk_flaky", execute_function=flaky, poll_interval=10, thread_count=4),
        Worker(task_definition_name="sdk_add_one", execute_function=add_one, poll_interval=10, thread_count=4),
    ]
    handler = TaskHandler(workers=workers, configuration=cfg, scan_for_annotated_workers=False)
    handler.start_processes()
    stop = threading.Event()
    try:
        sys.stdin.read()  # the test closes our stdin (or kills us) to stop the workers
    finally:
        stop.set()
        handler.stop_processes()


if __name__ == "__main__":
    main(sys.argv[1])

"""The execution tier: where admitted requests run, off the chat front's event loop.

A chat front admits a request through the pipeline, acknowledges it, and submits a `Job`
(`jobs.py`) to an executor: a local process pool by default (`local.py`), or a queue that
`coach worker` processes consume (`queue.py`). Whoever runs a job also delivers its answer over
the platform's REST API (`bot.surfaces.replies`), and records that it did, so a job delivered
twice is answered once (`runner.py`).
"""

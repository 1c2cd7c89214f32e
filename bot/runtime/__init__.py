"""The alert and live-plan runtime: price feed -> alert book / plan tracker -> outbox -> destinations.

feed.py          prices from the provider's stream (or polling), with stale-feed detection
evaluator.py     the alert book fed by ticks and bars; triggers written with their outbox rows in one transaction
tracker.py       tracked plans through their lifecycle; transitions posted with a chart
replan.py        after a stop-out, the next plan in the background, with an Adopt button (or adopted at once)
routing.py       where a channel's alerts go (its settings: route, allowed families, extra webhooks)
messages.py      the Replies the runtime posts, and their outbox form
dispatcher.py    outbox delivery: retries with backoff, retry_after on 429, order per channel, digests, resume
destinations.py  the Destination protocol, its registry, the console and webhook destinations
worker.py        the loop that runs all of it (`coach runtime`, and a task of `coach serve`)
"""

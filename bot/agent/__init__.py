"""The LLM coach: registry commands as tools, a bounded loop, grounded replies and per-user memory.

The composition root (`bot.app.build_free_text`) makes the `Agent` the free-text handler when
OPENAI_API_KEY or OPENAI_BASE_URL is set, else the rule-based intent parser (`bot.intents`).
The openai SDK is imported only when an LLM is configured.
"""

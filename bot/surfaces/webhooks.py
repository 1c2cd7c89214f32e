"""Webhook sinks: a generic JSON body, and Discord/Slack webhooks rendered exactly as the bots render their messages.

Each has `async def send(target, reply, idempotency_key) -> None` (the runtime's Destination
protocol); the target is the URL. A 429 raises `RateLimited(retry_after=...)`; an answer that no
retry can fix (a revoked or unknown webhook, a rejected payload) a permanent `DeliveryError`. The
`Idempotency-Key` header (and the generic body's `idempotency_key`) lets receivers drop the rare
repeat that at-least-once delivery allows.

Every URL is checked before each post and every connection goes only where the webhook policy
allows (`bot.webhook_targets`, `bot.surfaces.guarded_http`). What a failure says ends up in
`/alerts status` and `/alerts test`, read by anyone in the channel, so it names the masked URL and
the status code only: never the receiver's answer, and never how a connection failed (refused,
timed out, reset), which would tell open ports from closed ones.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from bot.reply import Reply
from bot.runtime.destinations import DeliveryError, PartProgress
from bot.surfaces import render_discord, render_slack
from bot.surfaces.guarded_http import webhook_client
from bot.webhook_targets import Resolver, WebhookPolicy, WebhookRefused
from core.errors import RateLimited
from core.urls import mask_url
from providers.http import retry_after_header


def retry_after_seconds(resp: httpx.Response) -> float | None:
    """Seconds to wait from a 429: the JSON `retry_after` (Discord) or the rate-limit headers."""
    try:
        body = resp.json()
        if isinstance(body, dict) and body.get("retry_after") is not None:
            return max(0.0, float(body["retry_after"]))
    except (ValueError, TypeError):
        pass
    return retry_after_header(resp.headers)


def check_webhook_response(provider: str, url: str, resp: httpx.Response) -> None:
    """Return on 2xx; raise RateLimited on 429, DeliveryError otherwise (permanent when retrying cannot help).

    The message carries the status code alone: the receiver's body is not ours to show.
    """
    if 200 <= resp.status_code < 300:
        return
    if resp.status_code == 429:
        raise RateLimited(provider, f"{mask_url(url)} rate limited", retry_after=retry_after_seconds(resp))
    permanent = resp.status_code in (400, 401, 403, 404, 410, 413, 422) or 300 <= resp.status_code < 400
    raise DeliveryError(provider, f"{mask_url(url)} answered {resp.status_code}", permanent=permanent)


def refused(provider: str, url: str, exc: WebhookRefused) -> DeliveryError:
    """The permanent failure of a post the webhook policy refuses (the reason names the rule, not the network)."""
    return DeliveryError(provider, f"{mask_url(url)} refused: {exc.message}", permanent=True)


def undeliverable(provider: str, url: str) -> DeliveryError:
    """The retryable failure of a post that reached no answer; how it failed is left out on purpose."""
    return DeliveryError(provider, f"could not deliver to {mask_url(url)}")


class WebhookDestination:
    """POSTs a generic JSON rendering of the reply to a URL, with an `Idempotency-Key` header.

    Body: {"idempotency_key", "title", "body", "severity", "fields", "actions", "footer",
    "as_of", "data", "attachments": [{"filename", "mime", "size"}]}. Discord webhooks and Slack
    incoming webhooks have their own kinds, rendered as the bots render their messages
    (`bot.surfaces.channel_destinations`).
    """

    kind = "webhook"

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        policy: WebhookPolicy | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._client = client
        self._own = client is None
        self.timeout = timeout
        self.policy = policy or WebhookPolicy()
        self.resolver = resolver

    async def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = webhook_client(self.policy, self.kind, timeout=self.timeout, resolver=self.resolver)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._own:
            await self._client.aclose()
            self._client = None

    async def send(self, target: str, reply: Reply, idempotency_key: str) -> None:
        http = await self._http()
        try:
            url = self.policy.check_url(target, self.kind)
            resp = await http.post(
                url, json=generic_payload(reply, idempotency_key), headers={"Idempotency-Key": idempotency_key}
            )
        except WebhookRefused as exc:
            raise refused(self.kind, target, exc) from None
        except httpx.HTTPError:
            raise undeliverable(self.kind, target) from None
        check_webhook_response(self.kind, target, resp)


def generic_payload(reply: Reply, key: str) -> dict[str, Any]:
    """The generic webhook JSON body of a reply."""
    return {
        "idempotency_key": key,
        "title": reply.title,
        "body": reply.body,
        "severity": reply.severity,
        "fields": [f.model_dump() for f in reply.fields],
        "actions": [a.model_dump() for a in reply.actions],
        "footer": reply.footer(),
        "as_of": reply.as_of.isoformat() if reply.as_of else None,
        "data": reply.data_json(),
        "attachments": [{"filename": a.filename, "mime": a.mime, "size": len(a.data)} for a in reply.attachments],
    }


class _PlatformWebhook:
    """What the Discord and Slack webhook kinds share: the URL (or the target's), the HTTP client, part progress."""

    provider = "webhook"

    def __init__(
        self,
        url: str | None = None,
        http: httpx.AsyncClient | None = None,
        *,
        tz: str = "America/New_York",
        policy: WebhookPolicy | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.url = url
        self._client = http
        self._own = http is None
        self.tz = tz
        self.policy = policy or WebhookPolicy()
        self.resolver = resolver
        self._progress = PartProgress()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = webhook_client(self.policy, self.provider, resolver=self.resolver)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._own:
            await self._client.aclose()
            self._client = None

    def _url(self, target: str) -> str:
        """The URL to post to (the target's, else the one this sink was made with), checked against the policy."""
        url = target if target.startswith(("http://", "https://")) else self.url
        if not url:
            raise DeliveryError(self.provider, "no webhook URL", permanent=True)
        try:
            return self.policy.check_url(url, self.provider)
        except WebhookRefused as exc:
            raise refused(self.provider, url, exc) from None

    async def _post(self, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.http.post(url, **kwargs)
        except WebhookRefused as exc:
            raise refused(self.provider, url, exc) from None
        except httpx.HTTPError:
            raise undeliverable(self.provider, url) from None


class DiscordWebhookDestination(_PlatformWebhook):
    """Posts replies to a Discord webhook URL (embeds + chart as files[n]); buttons become text (webhooks cannot run them)."""

    provider = "discord_webhook"

    async def send(self, target: str, reply: Reply, idempotency_key: str) -> None:
        url = self._url(target)
        params: dict[str, str] = {"wait": "true"}
        if target.startswith("thread:"):
            params["thread_id"] = target.split(":", 2)[1]
        done = self._progress.get(idempotency_key)
        for i, m in enumerate(render_discord.render(reply, tz=self.tz, buttons=False)):
            if i < done:
                continue
            payload, files = m.request()
            if files:
                resp = await self._post(
                    url,
                    params=params,
                    data={"payload_json": json.dumps(payload)},
                    files=files,
                    headers={"Idempotency-Key": idempotency_key},
                )
            else:
                resp = await self._post(url, params=params, json=payload, headers={"Idempotency-Key": idempotency_key})
            check_webhook_response(self.provider, url, resp)
            self._progress.mark(idempotency_key, i + 1)


class SlackWebhookDestination(_PlatformWebhook):
    """Posts replies to a Slack incoming webhook as Block Kit; the chart is named in a note (webhooks carry no files).

    Buttons become text: a click on a webhook's message goes to the app that owns the webhook,
    which need not be this one.
    """

    provider = "slack_webhook"

    async def send(self, target: str, reply: Reply, idempotency_key: str) -> None:
        url = self._url(target)
        note = ""
        if reply.attachments:
            names = ", ".join(a.filename for a in reply.attachments)
            note = f"not attached here ({names}): Slack incoming webhooks cannot carry files"
        done = self._progress.get(idempotency_key)
        for i, m in enumerate(render_slack.render(reply, tz=self.tz, extra_context=note, buttons=False)):
            if i < done:
                continue
            resp = await self._post(url, json={"text": m.text, "blocks": m.blocks}, headers={"Idempotency-Key": idempotency_key})
            check_webhook_response(self.provider, url, resp)
            self._progress.mark(idempotency_key, i + 1)

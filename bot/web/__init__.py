"""What `coach serve` answers over HTTP beyond health and metrics: the HTTP API (/api/v1/<command>,
/openapi.json) and the live chart page behind a reply's "Open chart" link."""

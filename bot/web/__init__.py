"""What `coach serve` shows in a browser: the live chart page behind a reply's "Open chart" link."""
